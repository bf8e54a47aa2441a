//! One streamed chat completion, timed: time to the first token, total time, content chunks, and
//! what went wrong if anything did.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;

use super::connection::{Connection, Endpoint};
use super::sse::{SseReader, StreamItem};

/// The OpenAI-compatible route every target serves.
pub const CHAT_COMPLETIONS_PATH: &str = "/v1/chat/completions";

/// Why a stream does not count as done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamFailure {
    /// No connection could be opened.
    Connect(String),
    /// The target answered with another status than 200.
    Status(u16, String),
    /// The connection failed before the answer was complete.
    Transport(String),
    /// The stream carried an error chunk.
    ErrorChunk(String),
    /// The stream carried data that is not a chat completion chunk.
    Malformed(String),
    /// The body ended without `data: [DONE]`.
    NoDone,
    /// The answer was complete but had another number of content chunks than the upstream sends.
    ChunkCount {
        /// Content chunks received.
        got: u32,
        /// Content chunks the upstream sends.
        expected: u32,
    },
}

impl StreamFailure {
    /// A short name for counting failures by kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Connect(_) => "connect",
            Self::Status(..) => "status",
            Self::Transport(_) => "transport",
            Self::ErrorChunk(_) => "error chunk",
            Self::Malformed(_) => "malformed",
            Self::NoDone => "no [DONE]",
            Self::ChunkCount { .. } => "chunk count",
        }
    }
}

impl fmt::Display for StreamFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(why) => write!(f, "cannot connect: {why}"),
            Self::Status(status, body) => write!(f, "status {status}: {body}"),
            Self::Transport(why) => write!(f, "connection failed mid-answer: {why}"),
            Self::ErrorChunk(message) => write!(f, "error chunk: {message}"),
            Self::Malformed(why) => write!(f, "malformed chunk: {why}"),
            Self::NoDone => f.write_str("the body ended without [DONE]"),
            Self::ChunkCount { got, expected } => write!(f, "{got} content chunks instead of {expected}"),
        }
    }
}

/// The measurements of one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    /// From sending the request to the first chunk with non-empty `delta.content`.
    pub ttft: Option<Duration>,
    /// From sending the request to the end of the body.
    pub total: Duration,
    /// Chunks with non-empty `delta.content`.
    pub content_chunks: u32,
    /// When the stream ended, counted from the start of its cell.
    pub ended_at: Duration,
    /// Why the stream failed; `None` for a complete answer.
    pub failure: Option<StreamFailure>,
}

/// What every stream of a cell sends and expects.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    /// The request body (JSON).
    pub body: Bytes,
    /// Content chunks a complete answer has.
    pub expected_chunks: u32,
}

impl StreamSpec {
    /// A streamed request for `model` with usage reporting, as the OpenAI SDKs send it.
    pub fn chat(model: &str, expected_chunks: u32) -> Self {
        let body = serde_json::json!({
            "model": model,
            "messages": [{ "role": "user", "content": "Hola, ¿me cuentas algo?" }],
            "stream": true,
            "stream_options": { "include_usage": true },
        });
        Self { body: Bytes::from(body.to_string()), expected_chunks }
    }
}

/// Runs one stream on `connection`, opening (or reopening) it when needed, and counts every content
/// chunk in `chunks_seen` as it arrives (so streams cut off at a cell's time cap still count).
pub async fn run_stream(
    connection: &mut Option<Connection>,
    endpoint: &Endpoint,
    spec: &StreamSpec,
    cell_start: Instant,
    chunks_seen: &AtomicU64,
) -> StreamRecord {
    let mut reused = true;
    let mut started = Instant::now();
    let response = loop {
        let open = match connection {
            Some(open) if !open.is_closed() => open,
            _ => {
                reused = false;
                match Connection::open(endpoint).await {
                    Ok(opened) => connection.insert(opened),
                    Err(error) => {
                        return failed(started, cell_start, StreamFailure::Connect(format!("{error:#}")));
                    }
                }
            }
        };
        started = Instant::now();
        let request = match endpoint.post_json(CHAT_COMPLETIONS_PATH, spec.body.clone()) {
            Ok(request) => request,
            Err(error) => return failed(started, cell_start, StreamFailure::Connect(format!("{error:#}"))),
        };
        match open.send(request).await {
            Ok(response) => break response,
            // A kept-alive connection the server closed just as the request left: any HTTP client
            // retries that once on a fresh connection, and so does the benchmark.
            Err(error)
                if reused && (error.is_canceled() || error.is_incomplete_message() || error.is_closed()) =>
            {
                *connection = None;
                reused = false;
            }
            Err(error) => {
                *connection = None;
                return failed(started, cell_start, StreamFailure::Transport(error.to_string()));
            }
        }
    };
    let status = response.status().as_u16();
    let mut body = response.into_body();
    if status != 200 {
        let text = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let text = String::from_utf8_lossy(&text[..text.len().min(200)]).into_owned();
        return failed(started, cell_start, StreamFailure::Status(status, text));
    }
    let mut reader = SseReader::default();
    let mut ttft = None;
    let mut content_chunks = 0u32;
    let mut done = false;
    let mut failure = None;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(error) => {
                *connection = None;
                failure = Some(StreamFailure::Transport(error.to_string()));
                break;
            }
        };
        let Ok(data) = frame.into_data() else { continue };
        reader.feed(&data, |item| match item {
            StreamItem::Content => {
                if ttft.is_none() {
                    ttft = Some(started.elapsed());
                }
                content_chunks += 1;
                chunks_seen.fetch_add(1, Ordering::Relaxed);
            }
            StreamItem::Other => {}
            StreamItem::Done => done = true,
            StreamItem::Error(message) => {
                failure.get_or_insert(StreamFailure::ErrorChunk(message));
            }
            StreamItem::Malformed(why) => {
                failure.get_or_insert(StreamFailure::Malformed(why));
            }
        });
    }
    let ended = Instant::now();
    let verdict = if !done {
        Some(StreamFailure::NoDone)
    } else if content_chunks != spec.expected_chunks {
        Some(StreamFailure::ChunkCount { got: content_chunks, expected: spec.expected_chunks })
    } else {
        None
    };
    let failure = failure.or(verdict);
    StreamRecord {
        ttft,
        total: ended - started,
        content_chunks,
        ended_at: ended.saturating_duration_since(cell_start),
        failure,
    }
}

fn failed(started: Instant, cell_start: Instant, failure: StreamFailure) -> StreamRecord {
    let now = Instant::now();
    StreamRecord {
        ttft: None,
        total: now - started,
        content_chunks: 0,
        ended_at: now.saturating_duration_since(cell_start),
        failure: Some(failure),
    }
}
