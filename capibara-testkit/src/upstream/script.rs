//! Playing a scripted reply: beats become frames written one at a time (streaming), or one assembled
//! answer (non-streaming). Protocol modules only say how each beat looks on their wire.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::Stream;
use hyper::body::Frame;

use super::Beat;
use super::markup::{Markup, MarkupWriter};

/// Where reasoning goes on the wire for one exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReasoningChannel {
    /// A JSON field of its own (`reasoning_content`, `reasoning`, `thinking`).
    Field(&'static str),
    /// Markup inside the content text.
    Markup(Markup),
}

/// What every frame of one answer shares.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    /// The model the request asked for (or the fake's current one).
    pub(crate) model: String,
    /// Unix seconds when the request arrived.
    pub(crate) created: u64,
    /// When the request arrived, for the durations some protocols report.
    pub(crate) started: Instant,
    /// Where reasoning goes.
    pub(crate) reasoning: ReasoningChannel,
    /// OpenAI: the request asked for `stream_options.include_usage`.
    pub(crate) include_usage: bool,
}

impl Exchange {
    pub(crate) fn new(model: String, reasoning: ReasoningChannel, include_usage: bool) -> Self {
        Self { model, created: unix_now(), started: Instant::now(), reasoning, include_usage }
    }

    /// A writer for reasoning (and tool calls) written as markup; Hermes-style tool calls when reasoning
    /// has a field of its own.
    pub(crate) fn markup_writer(&self) -> MarkupWriter {
        match self.reasoning {
            ReasoningChannel::Markup(markup) => MarkupWriter::new(markup),
            ReasoningChannel::Field(_) => MarkupWriter::new(Markup::ThinkTags),
        }
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

/// How one protocol writes the beats of a streamed answer.
pub(crate) trait StreamEncoder: Send + 'static {
    /// Appends the frames of one beat, in order. Never called with `Delay` or `Disconnect`.
    fn encode(&mut self, beat: &Beat, out: &mut VecDeque<Bytes>);
}

/// The error a scripted `Disconnect` makes the body yield, so the server drops the connection without
/// finishing the body.
#[derive(Debug)]
pub(crate) struct ScriptedDisconnect;

impl std::fmt::Display for ScriptedDisconnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the script cut the connection")
    }
}

impl std::error::Error for ScriptedDisconnect {}

/// Counts an answer as abandoned when dropped before the fake finished writing it.
pub(crate) struct AbandonGuard {
    counter: Arc<AtomicUsize>,
    finished: bool,
}

impl AbandonGuard {
    pub(crate) fn new(counter: Arc<AtomicUsize>) -> Self {
        Self { counter, finished: false }
    }

    /// The fake wrote everything it meant to (or cut the connection on purpose).
    pub(crate) fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for AbandonGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.counter.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A streamed answer in progress.
struct Playback {
    beats: VecDeque<Beat>,
    encoder: Box<dyn StreamEncoder>,
    pending: VecDeque<Bytes>,
    guard: AbandonGuard,
}

impl Playback {
    async fn next_frame(&mut self) -> Option<Result<Frame<Bytes>, ScriptedDisconnect>> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                if self.pending.is_empty() && self.beats.is_empty() {
                    self.guard.finish();
                }
                return Some(Ok(Frame::data(frame)));
            }
            match self.beats.pop_front() {
                None => {
                    self.guard.finish();
                    return None;
                }
                Some(Beat::Delay(duration)) => tokio::time::sleep(duration).await,
                Some(Beat::Disconnect) => {
                    // Pending once, so the server flushes the frames written so far before the cut.
                    tokio::task::yield_now().await;
                    self.guard.finish();
                    self.beats.clear();
                    return Some(Err(ScriptedDisconnect));
                }
                Some(beat) => self.encoder.encode(&beat, &mut self.pending),
            }
        }
    }
}

/// The body of a streamed answer: each beat's frames are handed to the server as soon as the beat
/// happens, so a `Delay` really holds the rest back.
pub(crate) fn play_stream(
    beats: Vec<Beat>,
    encoder: Box<dyn StreamEncoder>,
    guard: AbandonGuard,
) -> impl Stream<Item = Result<Frame<Bytes>, ScriptedDisconnect>> + Send + 'static {
    let playback = Playback { beats: beats.into(), encoder, pending: VecDeque::new(), guard };
    futures::stream::unfold(playback, |mut playback| async move {
        let frame = playback.next_frame().await?;
        Some((frame, playback))
    })
}

/// A tool call of an assembled answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AssembledToolCall {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) arguments: String,
}

/// A non-streamed answer, folded from the beats.
#[derive(Debug, Clone, Default)]
pub(crate) struct Answer {
    /// Visible text (with markup when reasoning or tool calls are written as markup).
    pub(crate) content: String,
    /// Reasoning for protocols that carry it in a field of its own.
    pub(crate) reasoning: String,
    /// Structured tool calls.
    pub(crate) tool_calls: Vec<AssembledToolCall>,
    /// The last usage beat.
    pub(crate) usage: Option<(u32, u32)>,
    /// The finish reason, when the script finished.
    pub(crate) finish: Option<String>,
    /// Content beats seen, counted as generated tokens when the script gave no usage.
    pub(crate) pieces: u32,
}

impl Answer {
    /// Prompt and completion token counts: the scripted ones, or an estimate.
    pub(crate) fn counts(&self) -> (u32, u32) {
        self.usage.unwrap_or((10, self.pieces))
    }
}

/// How a scripted non-streamed reply ends.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A complete (or unfinished, when the script had no `Finish`) answer.
    Answer(Answer),
    /// An `Error` beat: answer with the protocol's 500 error document.
    Error(String),
    /// A `Malformed` beat: answer with this text as the body.
    Malformed(String),
    /// A `Disconnect` beat: cut the connection.
    Disconnect,
}

/// Folds the beats into one answer, sleeping through the delays as a server computing it would.
/// `tool_calls_as_markup` is set for protocols without structured tool calls.
pub(crate) async fn play_whole(beats: Vec<Beat>, exchange: &Exchange, tool_calls_as_markup: bool) -> Outcome {
    let mut answer = Answer::default();
    let mut markup = exchange.markup_writer();
    let mut pieces = Vec::new();
    let markup_reasoning = matches!(exchange.reasoning, ReasoningChannel::Markup(_));
    for beat in beats {
        match beat {
            Beat::Content(text) => {
                answer.pieces += 1;
                markup.content(&text, &mut pieces);
            }
            Beat::Reasoning(text) if markup_reasoning => markup.reasoning(&text, &mut pieces),
            Beat::Reasoning(text) => answer.reasoning.push_str(&text),
            Beat::ToolCall { name, arguments, .. } if tool_calls_as_markup => {
                markup.tool_call(&name, &arguments, &mut pieces);
            }
            Beat::ToolCall { id, name, arguments } => {
                answer.tool_calls.push(AssembledToolCall { id, name, arguments });
            }
            Beat::Usage { prompt_tokens, completion_tokens } => {
                answer.usage = Some((prompt_tokens, completion_tokens));
            }
            Beat::Finish(reason) => {
                markup.close(&mut pieces);
                answer.finish = Some(reason);
            }
            Beat::Delay(duration) => tokio::time::sleep(duration).await,
            Beat::KeepAlive => {}
            Beat::Malformed(text) => return Outcome::Malformed(text),
            Beat::Error(message) => return Outcome::Error(message),
            Beat::Disconnect => return Outcome::Disconnect,
        }
        for piece in pieces.drain(..) {
            answer.content.push_str(&piece);
        }
    }
    Outcome::Answer(answer)
}

/// Splits `text` near its middle on a character boundary (OpenAI tool-call arguments arrive in pieces).
pub(crate) fn split_in_two(text: &str) -> (&str, &str) {
    let mut middle = text.len() / 2;
    while !text.is_char_boundary(middle) {
        middle += 1;
    }
    text.split_at(middle)
}

/// Nanoseconds in a duration, saturated to `u64`.
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
