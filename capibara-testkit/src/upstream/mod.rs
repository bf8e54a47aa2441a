//! Scripted fake LLM servers on real sockets.
//!
//! A [`FakeUpstream`] imitates one server family ([`Protocol`]): it binds `127.0.0.1` on a free port,
//! serves every route of that family, records each chat request, and answers it with the next
//! scripted [`FakeReply`] — an error status, or a stream of [`Beat`]s written one frame at a time in
//! the family's own wire format (OpenAI SSE chunks, Ollama NDJSON lines, llama.cpp SSE `/completion`
//! chunks).
//!
//! ```no_run
//! # async fn demo() {
//! use std::time::Duration;
//! use capibara_testkit::upstream::{Beat, FakeReply, FakeUpstream, Protocol};
//!
//! let fake = FakeUpstream::start(Protocol::OpenAi).await;
//! fake.push(FakeReply::status(429, "slow down"));
//! fake.push(FakeReply::Stream(vec![
//!     Beat::Content("Hola ".into()),
//!     Beat::Delay(Duration::from_millis(500)),
//!     Beat::Content("mundo".into()),
//!     Beat::Finish("stop".into()),
//! ]));
//! // point the client under test at fake.base_url(), then inspect fake.requests()
//! # }
//! ```
//!
//! Reasoning is written the way the configured [`ReasoningStyle`] says. A style that belongs to
//! another protocol's fields falls back to this protocol's own field (OpenAI `reasoning_content`,
//! Ollama `thinking`, llama.cpp Harmony markup); the markup styles ([`ReasoningStyle::Harmony`],
//! [`ReasoningStyle::ThinkTags`]) work on every protocol and put the markers inside the content text,
//! as servers do when they do not parse reasoning themselves. Markers are written as their own
//! frames, the way a model emits them as special tokens, and only around reasoning: a reply without
//! reasoning beats is plain text.

mod llamacpp;
mod markup;
mod ollama;
pub mod openai;
mod script;
mod server;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Which server family the fake imitates; it serves every route of that family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// OpenAI-compatible: `POST /v1/chat/completions` (stream and non-stream), `GET /v1/models`.
    OpenAi,
    /// Ollama native: `POST /api/chat`, `POST /api/generate` (NDJSON when streaming), `GET /api/tags`,
    /// `GET /api/version`, `GET /`.
    Ollama,
    /// llama.cpp server native: `POST /completion` (SSE when `stream: true`), `GET /health`,
    /// `GET /v1/models`, `GET /props`.
    LlamaCpp,
}

impl Protocol {
    /// The reasoning style a fresh fake of this protocol uses.
    pub fn default_reasoning_style(self) -> ReasoningStyle {
        match self {
            Self::OpenAi => ReasoningStyle::ReasoningContent,
            Self::Ollama => ReasoningStyle::Thinking,
            Self::LlamaCpp => ReasoningStyle::Harmony,
        }
    }

    /// The model name a fresh fake of this protocol reports.
    pub fn default_model(self) -> &'static str {
        match self {
            Self::Ollama => "gpt-oss:20b",
            Self::OpenAi | Self::LlamaCpp => "fake-model",
        }
    }
}

/// How the fake marks reasoning, per protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReasoningStyle {
    /// OpenAI protocol: `delta.reasoning_content` (vLLM, DeepSeek) — default for OpenAi.
    ReasoningContent,
    /// OpenAI protocol: `delta.reasoning` (Ollama /v1, llama.cpp server, OpenRouter).
    Reasoning,
    /// Ollama protocol: `message.thinking` (/api/chat) and `thinking` (/api/generate) — default for Ollama.
    Thinking,
    /// llama.cpp raw text: GPT-OSS Harmony channels inside `content`
    /// (`<|channel|>analysis<|message|>…<|end|><|start|>assistant<|channel|>final<|message|>…`) — default
    /// for LlamaCpp.
    Harmony,
    /// llama.cpp raw text: `<think>…</think>` inside `content`.
    ThinkTags,
}

/// One chat/generate/completion request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// HTTP method (`POST`).
    pub method: String,
    /// Request path (`/v1/chat/completions`, `/api/chat`, …), without the query.
    pub path: String,
    /// Headers, names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The JSON body; `Null` when there was none, a JSON string holding the raw text when it was not JSON.
    pub body: serde_json::Value,
}

impl RecordedRequest {
    /// The first value of a header, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// How the fake answers one chat request.
#[derive(Debug, Clone, PartialEq)]
pub enum FakeReply {
    /// Answer with this HTTP status and body before streaming anything (e.g. 429, 500, 503, 400, 404).
    ///
    /// `body` is the error message, wrapped in the protocol's error document; a body that is already a
    /// JSON object is sent verbatim.
    Status {
        /// HTTP status code.
        status: u16,
        /// Error message (or a whole JSON error document).
        body: String,
        /// Sent as the `Retry-After` header, in seconds.
        retry_after_secs: Option<u64>,
    },
    /// Stream these beats (or, for a non-streaming request, answer one JSON document assembled from them).
    Stream(Vec<Beat>),
}

impl FakeReply {
    /// Content beats, one per whitespace-separated word (the space kept on the word), then Usage, then
    /// Finish("stop").
    pub fn text(text: &str) -> FakeReply {
        let mut beats: Vec<Beat> =
            text.split_inclusive(' ').map(|word| Beat::Content(word.to_owned())).collect();
        let completion_tokens = u32::try_from(beats.len()).unwrap_or(u32::MAX);
        beats.push(Beat::Usage { prompt_tokens: 10, completion_tokens });
        beats.push(Beat::Finish("stop".to_owned()));
        FakeReply::Stream(beats)
    }

    /// An error status with this message and no `Retry-After`.
    pub fn status(status: u16, body: &str) -> FakeReply {
        FakeReply::Status { status, body: body.to_owned(), retry_after_secs: None }
    }
}

/// One step of a scripted answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Beat {
    /// A piece of the visible answer.
    Content(String),
    /// A piece of reasoning, encoded per [`ReasoningStyle`].
    Reasoning(String),
    /// A tool call. OpenAI and Ollama `/api/chat` send it structured (OpenAI splits the arguments over two
    /// chunks); Ollama `/api/generate` and llama.cpp write it as model markup inside the text.
    ToolCall {
        /// Call id.
        id: String,
        /// Function name.
        name: String,
        /// Arguments as JSON text.
        arguments: String,
    },
    /// Token counts. Ollama and llama.cpp report the last ones in their final frame; OpenAI sends a usage
    /// chunk after the finish chunk when the request asked for `stream_options.include_usage`.
    Usage {
        /// Tokens in the prompt.
        prompt_tokens: u32,
        /// Tokens generated.
        completion_tokens: u32,
    },
    /// The protocol's final frame with this wire reason ("stop", "length", "tool_calls"; llama.cpp maps
    /// "stop"→stop_type "eos", "length"→"limit"). For OpenAi the fake then also sends `data: [DONE]`.
    Finish(String),
    /// Wait this long before the next beat.
    Delay(Duration),
    /// SSE comment line `: keep-alive` (OpenAi, LlamaCpp); an empty line for Ollama NDJSON.
    KeepAlive,
    /// A raw broken frame: `data: <text>` for SSE protocols, `<text>` as a line for NDJSON.
    Malformed(String),
    /// The protocol's mid-stream error frame (OpenAi/LlamaCpp: `data: {"error":{"message":…,"type":"server_error"}}`;
    /// Ollama: `{"error":"…"}` line).
    Error(String),
    /// Cut the connection without finishing the HTTP body.
    Disconnect,
}

/// A fake LLM server on `127.0.0.1`; dropping it stops the server and closes its connections.
pub struct FakeUpstream {
    protocol: Protocol,
    address: std::net::SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl std::fmt::Debug for FakeUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeUpstream").field("protocol", &self.protocol).field("url", &self.url()).finish()
    }
}

/// What the server task and the test share.
struct Shared {
    protocol: Protocol,
    state: Mutex<State>,
    abandoned: Arc<AtomicUsize>,
}

struct State {
    queue: VecDeque<FakeReply>,
    default_reply: FakeReply,
    style: ReasoningStyle,
    healthy: bool,
    requests: Vec<RecordedRequest>,
    model: String,
    embedding_dimension: usize,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock must not hide the state from the others.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl FakeUpstream {
    /// Binds 127.0.0.1 on a free port and serves until dropped (drop stops the server).
    pub async fn start(protocol: Protocol) -> FakeUpstream {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind a free port on 127.0.0.1");
        let address = listener.local_addr().expect("read the bound address");
        let shared = Arc::new(Shared {
            protocol,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                default_reply: FakeReply::text("Hola, soy un modelo de prueba."),
                style: protocol.default_reasoning_style(),
                healthy: true,
                requests: Vec::new(),
                model: protocol.default_model().to_owned(),
                embedding_dimension: 8,
            }),
            abandoned: Arc::new(AtomicUsize::new(0)),
        });
        let server = tokio::spawn(server::serve(listener, Arc::clone(&shared)));
        FakeUpstream { protocol, address, shared, server }
    }

    /// The server family this fake imitates.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Root URL, e.g. `http://127.0.0.1:43121` (no trailing slash, no `/v1`).
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The base URL a client of this protocol is configured with: `url() + "/v1"` for OpenAi, `url()`
    /// otherwise.
    pub fn base_url(&self) -> String {
        match self.protocol {
            Protocol::OpenAi => format!("{}/v1", self.url()),
            Protocol::Ollama | Protocol::LlamaCpp => self.url(),
        }
    }

    /// How reasoning beats of the following replies are written.
    pub fn set_reasoning_style(&self, style: ReasoningStyle) {
        self.shared.state().style = style;
    }

    /// Replies to the next chat/generate/completion requests, first in first out.
    pub fn push(&self, reply: FakeReply) {
        self.shared.state().queue.push_back(reply);
    }

    /// Reply used when the queue is empty (initially `FakeReply::text("Hola, soy un modelo de prueba.")`).
    pub fn set_default(&self, reply: FakeReply) {
        self.shared.state().default_reply = reply;
    }

    /// Length of the vectors `/v1/embeddings` answers with (default 8).
    pub fn set_embedding_dimension(&self, dimension: usize) {
        self.shared.state().embedding_dimension = dimension;
    }

    /// Health routes answer 503 while false (default true).
    pub fn set_healthy(&self, healthy: bool) {
        self.shared.state().healthy = healthy;
    }

    /// Every chat/generate/completion request received, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.state().requests.clone()
    }

    /// How many chat/generate/completion streams the client abandoned before the fake finished writing
    /// them (a non-streaming request whose client hung up while the fake was still preparing the answer
    /// counts too).
    pub fn abandoned_streams(&self) -> usize {
        self.shared.abandoned.load(Ordering::SeqCst)
    }

    /// The model name the model routes report: the one the last chat request asked for, or the
    /// protocol's default (`gpt-oss:20b` for Ollama, `fake-model` otherwise).
    pub fn model(&self) -> String {
        self.shared.state().model.clone()
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        // The server task owns every connection task; aborting it closes them all.
        self.server.abort();
    }
}

/// The unit vector the fake's `/v1/embeddings` route gives `text` (before its ×3 scaling):
/// deterministic, different for different texts.
pub fn fake_embedding(text: &str, dimension: usize) -> Vec<f32> {
    // FNV-1a seeds a small xorshift generator: stable across runs and platforms.
    let mut state =
        text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let raw: Vec<f32> = (0..dimension)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    let norm = raw.iter().map(|v| v * v).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
    raw.iter().map(|v| v / norm).collect()
}

/// A root URL (`http://127.0.0.1:<port>`) where nothing listens, for connection-refused tests.
///
/// The port was free a moment ago; another process could take it, which is unlikely within a test.
pub async fn closed_port_url() -> String {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind a free port on 127.0.0.1");
    let address = listener.local_addr().expect("read the bound address");
    drop(listener);
    format!("http://{address}")
}
