//! `capibara-fake-upstream`: a fast OpenAI-compatible streaming upstream for the gateway benchmark.
//!
//! It is the "direct" baseline a proxy is compared against, so each chunk costs as little as it can:
//! the frame parts shared by every chunk of an answer are serialised once, and nothing is logged.
//!
//! ```text
//! capibara-fake-upstream --port 9000 [--bind 127.0.0.1] [--tokens 64] [--delay-ms 0] [--threads 1]
//! ```
//!
//! A request's model can override the shape of the answer: `bench-64x5ms` streams 64 one-token chunks
//! 5 ms apart. A model whose name starts with `reasoning` first thinks aloud in vLLM's
//! `reasoning_content` channel (as gpt-oss is served), then answers. Routes: `POST /v1/chat/completions` (streamed or not; a usage chunk when
//! `stream_options.include_usage`), `GET /v1/models`, `GET /health`. Prints `listening on http://…` on
//! stdout once bound.

use std::borrow::Cow;
use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use bytes::Bytes;
use capibara_testkit::upstream::openai::{self, ChunkEncoder, DONE_FRAME};
use clap::{Arg, Command};
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpListener;

/// Command line.
#[derive(Debug, Clone)]
struct Args {
    /// Port to listen on (0 picks a free one).
    port: u16,
    /// Address to bind.
    bind: std::net::IpAddr,
    /// One-token chunks per answer, unless the model name says otherwise.
    tokens: u32,
    /// Milliseconds between chunks, unless the model name says otherwise.
    delay_ms: u64,
    /// Tokio worker threads.
    threads: u16,
}

impl Args {
    // The builder API rather than the derive: the derive's generated `allow(clippy::restriction)`
    // clashes with the workspace's forbidden lints.
    fn command() -> Command {
        let number =
            |name: &'static str, help: &'static str| Arg::new(name).long(name).value_name("N").help(help);
        Command::new("capibara-fake-upstream")
            .about("A fast OpenAI-compatible streaming upstream for benchmarks")
            .arg(
                number("port", "Port to listen on (0 picks a free one)")
                    .required(true)
                    .value_parser(clap::value_parser!(u16)),
            )
            .arg(
                Arg::new("bind")
                    .long("bind")
                    .value_name("ADDRESS")
                    .default_value("127.0.0.1")
                    .help("Address to bind")
                    .value_parser(clap::value_parser!(std::net::IpAddr)),
            )
            .arg(
                number("tokens", "One-token chunks per answer, unless the model name says otherwise")
                    .default_value("64")
                    .value_parser(clap::value_parser!(u32)),
            )
            .arg(
                number("delay-ms", "Milliseconds between chunks, unless the model name says otherwise")
                    .default_value("0")
                    .value_parser(clap::value_parser!(u64)),
            )
            .arg(
                number("threads", "Tokio worker threads")
                    .default_value("1")
                    .value_parser(clap::value_parser!(u16).range(1..)),
            )
    }

    fn parse() -> anyhow::Result<Args> {
        let matches = Self::command().get_matches();
        let value = |name: &str| anyhow::anyhow!("--{name} has no value");
        Ok(Args {
            port: *matches.get_one("port").ok_or_else(|| value("port"))?,
            bind: *matches.get_one("bind").ok_or_else(|| value("bind"))?,
            tokens: *matches.get_one("tokens").ok_or_else(|| value("tokens"))?,
            delay_ms: *matches.get_one("delay-ms").ok_or_else(|| value("delay-ms"))?,
            threads: *matches.get_one("threads").ok_or_else(|| value("threads"))?,
        })
    }
}

/// How one answer is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shape {
    tokens: u32,
    delay: Duration,
}

impl Shape {
    /// `bench-<tokens>x<delay>ms` overrides the defaults; any other name keeps them.
    fn for_model(model: &str, default: Shape) -> Shape {
        let parsed = model.strip_prefix("bench-").and_then(|rest| {
            let (tokens, delay) = rest.split_once('x')?;
            let delay = delay.strip_suffix("ms")?;
            Some(Shape { tokens: tokens.parse().ok()?, delay: Duration::from_millis(delay.parse().ok()?) })
        });
        parsed.unwrap_or(default)
    }

    fn model_name(self) -> String {
        format!("bench-{}x{}ms", self.tokens, self.delay.as_millis())
    }
}

/// The answer's words, one per chunk, cycled.
const WORDS: [&str; 16] = [
    "Hola ",
    "desde ",
    "el ",
    "servidor ",
    "de ",
    "prueba ",
    "que ",
    "responde ",
    "sin ",
    "pensar ",
    "pero ",
    "con ",
    "muchas ",
    "palabras ",
    "bien ",
    "medidas. ",
];

/// What a `reasoning…` model thinks before answering, one chunk per word.
const THOUGHTS: [&str; 4] = ["El ", "usuario ", "saluda. ", "Respondo."];

fn reasons(model: &str) -> bool {
    model.starts_with("reasoning")
}

/// The parts of a chat request the answer depends on; the rest (messages included) is skipped.
#[derive(Deserialize)]
struct ChatBody<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

fn json_response(status: StatusCode, document: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(document.to_string())).boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// One streamed answer being written.
struct Answer {
    chunks: ChunkEncoder,
    thoughts_left: usize,
    shape: Shape,
    written: u32,
    usage: Option<(u32, u32)>,
    stage: Stage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Tokens,
    Finish,
    Usage,
    Done,
    Ended,
}

impl Answer {
    async fn next_frame(&mut self) -> Option<Bytes> {
        match self.stage {
            Stage::Tokens if self.thoughts_left > 0 => {
                let thought = THOUGHTS[THOUGHTS.len() - self.thoughts_left];
                self.thoughts_left -= 1;
                Some(self.chunks.text_delta("reasoning_content", thought))
            }
            Stage::Tokens => {
                if self.written > 0 && !self.shape.delay.is_zero() {
                    tokio::time::sleep(self.shape.delay).await;
                }
                let word = WORDS[self.written as usize % WORDS.len()];
                self.written += 1;
                if self.written >= self.shape.tokens {
                    self.stage = Stage::Finish;
                }
                Some(self.chunks.content(word))
            }
            Stage::Finish => {
                self.stage = if self.usage.is_some() { Stage::Usage } else { Stage::Done };
                Some(self.chunks.finish("stop"))
            }
            Stage::Usage => {
                self.stage = Stage::Done;
                self.usage.map(|(prompt, completion)| self.chunks.usage(prompt, completion))
            }
            Stage::Done => {
                self.stage = Stage::Ended;
                Some(Bytes::from_static(DONE_FRAME))
            }
            Stage::Ended => None,
        }
    }
}

async fn chat(request: Request<Incoming>, default: Shape) -> Response<Body> {
    let Ok(collected) = request.into_body().collect().await else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &openai::error_document(400, "could not read the body"),
        );
    };
    let raw = collected.to_bytes();
    let body: ChatBody<'_> = match serde_json::from_slice(&raw) {
        Ok(body) => body,
        Err(error) => {
            let message = format!("invalid JSON body: {error}");
            return json_response(StatusCode::BAD_REQUEST, &openai::error_document(400, &message));
        }
    };
    let model = body.model.as_deref().unwrap_or_default();
    let shape = Shape::for_model(model, default);
    let model = if model.is_empty() { shape.model_name() } else { model.to_owned() };
    // A rough prompt size: about four bytes of JSON per token.
    let prompt_tokens = u32::try_from(raw.len() / 4).unwrap_or(u32::MAX);
    let created = unix_now();
    if !body.stream {
        tokio::time::sleep(shape.delay * shape.tokens).await;
        let content: String = (0..shape.tokens).map(|i| WORDS[i as usize % WORDS.len()]).collect();
        let mut message = serde_json::json!({ "role": "assistant", "content": content });
        if reasons(&model) {
            message["reasoning_content"] = serde_json::json!(THOUGHTS.concat());
        }
        let document =
            openai::chat_completion(created, &model, &message, Some("stop"), (prompt_tokens, shape.tokens));
        return json_response(StatusCode::OK, &document);
    }
    let include_usage = body.stream_options.is_some_and(|options| options.include_usage);
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let answer = Answer {
        chunks: ChunkEncoder::new(&id, created, &model),
        thoughts_left: if reasons(&model) { THOUGHTS.len() } else { 0 },
        shape,
        written: 0,
        usage: include_usage.then_some((prompt_tokens, shape.tokens)),
        stage: if shape.tokens == 0 { Stage::Finish } else { Stage::Tokens },
    };
    let frames = futures::stream::unfold(answer, |mut answer| async move {
        let frame = answer.next_frame().await?;
        Some((Ok::<_, Infallible>(Frame::data(frame)), answer))
    });
    let mut response = Response::new(StreamBody::new(frames).boxed_unsync());
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    response.headers_mut().insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn handle(request: Request<Incoming>, default: Shape) -> Result<Response<Body>, Infallible> {
    let response = match (request.method(), request.uri().path()) {
        (&Method::POST, "/v1/chat/completions") => chat(request, default).await,
        (&Method::GET, "/v1/models") => {
            json_response(StatusCode::OK, &openai::models_document(&default.model_name(), unix_now()))
        }
        (&Method::GET, "/health") => json_response(StatusCode::OK, &serde_json::json!({ "status": "ok" })),
        (_, path) => {
            let message = format!("{path} not found");
            json_response(StatusCode::NOT_FOUND, &openai::error_document(404, &message))
        }
    };
    Ok(response)
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let address = SocketAddr::new(args.bind, args.port);
    let listener = TcpListener::bind(address).await.with_context(|| format!("binding {address}"))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on http://{bound}")?;
    stdout.flush()?;
    let default = Shape { tokens: args.tokens, delay: Duration::from_millis(args.delay_ms) };
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of file descriptors or similar: wait instead of spinning.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // Chunks are small and must leave when written, not after Nagle's delay.
        let _ = stream.set_nodelay(true);
        let shape = default;
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, shape));
            // A client hanging up mid-answer ends the connection with an error; nothing to do.
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(args.threads))
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(serve(args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn model_names_override_the_shape() {
        let default = Shape { tokens: 64, delay: Duration::ZERO };
        assert_eq!(
            Shape::for_model("bench-8x5ms", default),
            Shape { tokens: 8, delay: Duration::from_millis(5) }
        );
        assert_eq!(Shape::for_model("bench-128x0ms", default), Shape { tokens: 128, delay: Duration::ZERO });
        assert_eq!(Shape::for_model("gpt-oss:20b", default), default);
        assert_eq!(Shape::for_model("bench-8x5", default), default);
        assert_eq!(Shape::for_model("bench-x5ms", default), default);
        assert_eq!(default.model_name(), "bench-64x0ms");
    }

    #[tokio::test]
    async fn reasoning_models_think_before_they_answer() {
        let shape = Shape { tokens: 2, delay: Duration::ZERO };
        let mut answer = Answer {
            chunks: ChunkEncoder::new("chatcmpl-1", 0, "reasoning-test"),
            thoughts_left: THOUGHTS.len(),
            shape,
            written: 0,
            usage: None,
            stage: Stage::Tokens,
        };
        let mut frames = Vec::new();
        while let Some(frame) = answer.next_frame().await {
            frames.push(String::from_utf8(frame.to_vec()).unwrap());
        }
        let reasoning = frames.iter().take_while(|f| f.contains("reasoning_content")).count();
        assert_eq!(reasoning, THOUGHTS.len(), "{frames:?}");
        assert!(frames[reasoning].contains("\"content\":\"Hola \""), "{frames:?}");
        assert!(!frames[reasoning..].iter().any(|f| f.contains("reasoning_content")));
    }
}
