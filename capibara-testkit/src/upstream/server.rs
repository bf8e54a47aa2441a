//! The HTTP/1.1 server behind a [`FakeUpstream`](super::FakeUpstream): routes, request recording,
//! status replies and the model/health routes of each protocol.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::markup::Markup;
use super::ollama::Endpoint;
use super::script::{
    self, AbandonGuard, Exchange, Outcome, ReasoningChannel, ScriptedDisconnect, StreamEncoder,
};
use super::{FakeReply, Protocol, ReasoningStyle, RecordedRequest, Shared, llamacpp, ollama, openai};

/// Response body: a whole document, or a stream that may be cut.
type FakeBody = UnsyncBoxBody<Bytes, ScriptedDisconnect>;

const JSON: &str = "application/json";
const EVENT_STREAM: &str = "text/event-stream";
const NDJSON: &str = "application/x-ndjson";

/// Accepts connections until the task is aborted; aborting drops the `JoinSet`, which aborts every
/// connection task with it.
pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // Frames are small and must reach the client when written, not after Nagle's delay.
                    let _ = stream.set_nodelay(true);
                    let shared = Arc::clone(&shared);
                    connections.spawn(async move {
                        let service = service_fn(move |request| handle(Arc::clone(&shared), request));
                        // A client hanging up mid-answer ends the connection with an error; nothing to do.
                        let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                    });
                }
                // Out of file descriptors or similar: wait instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// The chat routes of every protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChatRoute {
    OpenAiChat,
    Ollama(Endpoint),
    LlamaCompletion,
}

/// The model and health routes of every protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InfoRoute {
    OpenAiModels,
    OllamaTags,
    OllamaVersion,
    OllamaRoot,
    LlamaHealth,
    LlamaModels,
    LlamaProps,
}

enum Route {
    Chat(ChatRoute),
    Embeddings,
    Info(InfoRoute),
    WrongMethod,
    Unknown,
}

fn route(protocol: Protocol, method: &Method, path: &str) -> Route {
    let found = match (protocol, path) {
        (Protocol::OpenAi, "/v1/chat/completions") => {
            Some((Method::POST, Route::Chat(ChatRoute::OpenAiChat)))
        }
        (_, "/v1/embeddings") => Some((Method::POST, Route::Embeddings)),
        (Protocol::OpenAi, "/v1/models") => Some((Method::GET, Route::Info(InfoRoute::OpenAiModels))),
        (Protocol::Ollama, "/api/chat") => {
            Some((Method::POST, Route::Chat(ChatRoute::Ollama(Endpoint::Chat))))
        }
        (Protocol::Ollama, "/api/generate") => {
            Some((Method::POST, Route::Chat(ChatRoute::Ollama(Endpoint::Generate))))
        }
        (Protocol::Ollama, "/api/tags") => Some((Method::GET, Route::Info(InfoRoute::OllamaTags))),
        (Protocol::Ollama, "/api/version") => Some((Method::GET, Route::Info(InfoRoute::OllamaVersion))),
        (Protocol::Ollama, "/") => Some((Method::GET, Route::Info(InfoRoute::OllamaRoot))),
        (Protocol::LlamaCpp, "/completion" | "/completions") => {
            Some((Method::POST, Route::Chat(ChatRoute::LlamaCompletion)))
        }
        (Protocol::LlamaCpp, "/health") => Some((Method::GET, Route::Info(InfoRoute::LlamaHealth))),
        (Protocol::LlamaCpp, "/v1/models" | "/models") => {
            Some((Method::GET, Route::Info(InfoRoute::LlamaModels)))
        }
        (Protocol::LlamaCpp, "/props") => Some((Method::GET, Route::Info(InfoRoute::LlamaProps))),
        _ => None,
    };
    match found {
        Some((expected, route))
            if *method == expected || (expected == Method::GET && *method == Method::HEAD) =>
        {
            route
        }
        Some(_) => Route::WrongMethod,
        None => Route::Unknown,
    }
}

async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Result<Response<FakeBody>, Infallible> {
    let protocol = shared.protocol;
    let response = match route(protocol, request.method(), request.uri().path()) {
        Route::Chat(chat_route) => chat(shared, chat_route, request).await,
        Route::Embeddings => embeddings(shared, request).await,
        Route::Info(info_route) => info(&shared, info_route),
        Route::WrongMethod => error_response(protocol, 405, "method not allowed", None),
        Route::Unknown => error_response(protocol, 404, &format!("{} not found", request.uri().path()), None),
    };
    Ok(response)
}

fn whole(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Response<FakeBody> {
    let mut response =
        Response::new(Full::new(body.into()).map_err(|never: Infallible| match never {}).boxed_unsync());
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn json_response(status: u16, document: &serde_json::Value) -> Response<FakeBody> {
    whole(status, JSON, document.to_string())
}

/// An error status with the protocol's error document (`message` passes verbatim when it is a JSON object).
fn error_response(
    protocol: Protocol,
    status: u16,
    message: &str,
    retry_after: Option<u64>,
) -> Response<FakeBody> {
    let body = match serde_json::from_str::<serde_json::Value>(message) {
        Ok(document) if document.is_object() => document.to_string(),
        _ => match protocol {
            Protocol::OpenAi => openai::error_document(status, message),
            Protocol::Ollama => ollama::error_document(message),
            Protocol::LlamaCpp => llamacpp::error_document(status, message),
        }
        .to_string(),
    };
    let mut response = whole(status, JSON, body);
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

fn info(shared: &Shared, info_route: InfoRoute) -> Response<FakeBody> {
    let (healthy, model) = {
        let state = shared.state();
        (state.healthy, state.model.clone())
    };
    if !healthy {
        return match shared.protocol {
            Protocol::LlamaCpp => json_response(503, &llamacpp::loading_document()),
            protocol => error_response(protocol, 503, "the server is not ready yet", None),
        };
    }
    let created = script::unix_now();
    match info_route {
        InfoRoute::OpenAiModels => json_response(200, &openai::models_document(&model, created)),
        InfoRoute::OllamaTags => json_response(200, &ollama::tags_document(&model)),
        InfoRoute::OllamaVersion => json_response(200, &ollama::version_document()),
        InfoRoute::OllamaRoot => whole(200, "text/plain; charset=utf-8", "Ollama is running"),
        InfoRoute::LlamaHealth => json_response(200, &llamacpp::health_document()),
        InfoRoute::LlamaModels => json_response(200, &llamacpp::models_document(&model, created)),
        InfoRoute::LlamaProps => json_response(200, &llamacpp::props_document(&model)),
    }
}

/// Where reasoning goes for a route and style: markup styles work everywhere; a field style of another
/// protocol falls back to the route's own field.
fn reasoning_channel(chat_route: ChatRoute, style: ReasoningStyle) -> ReasoningChannel {
    match (chat_route, style) {
        (_, ReasoningStyle::Harmony) => ReasoningChannel::Markup(Markup::Harmony),
        (_, ReasoningStyle::ThinkTags) => ReasoningChannel::Markup(Markup::ThinkTags),
        (ChatRoute::OpenAiChat, ReasoningStyle::Reasoning) => ReasoningChannel::Field("reasoning"),
        (ChatRoute::OpenAiChat, _) => ReasoningChannel::Field("reasoning_content"),
        (ChatRoute::Ollama(_), _) => ReasoningChannel::Field("thinking"),
        (ChatRoute::LlamaCompletion, _) => ReasoningChannel::Markup(Markup::Harmony),
    }
}

/// Reads a request's body: the record for [`FakeUpstream::requests`](super::FakeUpstream::requests)
/// and the body parsed as JSON; an unreadable body is answered with a 400.
async fn read(
    protocol: Protocol,
    request: Request<Incoming>,
) -> Result<(RecordedRequest, Result<serde_json::Value, serde_json::Error>), Response<FakeBody>> {
    let (parts, body) = request.into_parts();
    let Ok(collected) = body.collect().await else {
        return Err(error_response(protocol, 400, "could not read the request body", None));
    };
    let raw = collected.to_bytes();
    let parsed = serde_json::from_slice::<serde_json::Value>(&raw);
    Ok((record(&parts, &raw, &parsed), parsed))
}

/// The request as the test will see it in [`FakeUpstream::requests`](super::FakeUpstream::requests).
fn record(
    parts: &http::request::Parts,
    raw: &[u8],
    parsed: &Result<serde_json::Value, serde_json::Error>,
) -> RecordedRequest {
    let body = match parsed {
        _ if raw.is_empty() => serde_json::Value::Null,
        Ok(value) => value.clone(),
        Err(_) => serde_json::Value::String(String::from_utf8_lossy(raw).into_owned()),
    };
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned())
        })
        .collect();
    RecordedRequest { method: parts.method.to_string(), path: parts.uri.path().to_owned(), headers, body }
}

/// `POST /v1/embeddings`: a queued [`FakeReply::Status`](super::FakeReply::Status) is answered as
/// is; otherwise every input gets [`fake_embedding`](super::fake_embedding) scaled by 3 (so clients
/// must normalise), listed in reverse order (so clients must use `index`).
async fn embeddings(shared: Arc<Shared>, request: Request<Incoming>) -> Response<FakeBody> {
    let protocol = shared.protocol;
    let (recorded, parsed) = match read(protocol, request).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let (reply, dimension) = {
        let mut state = shared.state();
        state.requests.push(recorded);
        let reply = match state.queue.front() {
            Some(FakeReply::Status { .. }) => state.queue.pop_front(),
            _ => None,
        };
        (reply, state.embedding_dimension)
    };
    if let Some(FakeReply::Status { status, body, retry_after_secs }) = reply {
        return error_response(protocol, status, &body, retry_after_secs);
    }
    let Ok(body) = parsed else {
        return error_response(protocol, 400, "the request body is not valid JSON", None);
    };
    let inputs: Vec<String> = match body.get("input") {
        Some(serde_json::Value::String(text)) => vec![text.clone()],
        Some(serde_json::Value::Array(items)) if items.iter().all(serde_json::Value::is_string) => {
            items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect()
        }
        _ => return error_response(protocol, 400, "input must be a string or an array of strings", None),
    };
    let data: Vec<serde_json::Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(index, text)| {
            let vector: Vec<f32> = super::fake_embedding(text, dimension).iter().map(|v| v * 3.0).collect();
            serde_json::json!({"object": "embedding", "index": index, "embedding": vector})
        })
        .collect();
    let tokens: usize = inputs.iter().map(|t| t.split_whitespace().count()).sum();
    let model = body.get("model").cloned().unwrap_or(serde_json::Value::Null);
    json_response(
        200,
        &serde_json::json!({"object": "list", "data": data, "model": model,
                            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
    )
}

async fn chat(shared: Arc<Shared>, chat_route: ChatRoute, request: Request<Incoming>) -> Response<FakeBody> {
    let protocol = shared.protocol;
    let (recorded, parsed) = match read(protocol, request).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let (reply, exchange) = {
        let mut state = shared.state();
        state.requests.push(recorded);
        let Ok(body) = parsed.as_ref().map(|value| value.as_object()) else {
            return error_response(protocol, 400, "the request body is not valid JSON", None);
        };
        let Some(body) = body else {
            return error_response(protocol, 400, "the request body must be a JSON object", None);
        };
        if let Some(model) =
            body.get("model").and_then(serde_json::Value::as_str).filter(|model| !model.is_empty())
        {
            state.model = model.to_owned();
        }
        let include_usage = body
            .get("stream_options")
            .and_then(|options| options.get("include_usage"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let channel = reasoning_channel(chat_route, state.style);
        let reply = state.queue.pop_front().unwrap_or_else(|| state.default_reply.clone());
        (reply, Exchange::new(state.model.clone(), channel, include_usage))
    };
    let streaming = match (&parsed, chat_route) {
        (Ok(body), ChatRoute::Ollama(_)) => {
            body.get("stream").and_then(serde_json::Value::as_bool) != Some(false)
        }
        (Ok(body), _) => body.get("stream").and_then(serde_json::Value::as_bool) == Some(true),
        (Err(_), _) => false,
    };
    let beats = match reply {
        FakeReply::Status { status, body, retry_after_secs } => {
            return error_response(protocol, status, &body, retry_after_secs);
        }
        FakeReply::Stream(beats) => beats,
    };
    let guard = AbandonGuard::new(Arc::clone(&shared.abandoned));
    if streaming {
        stream_response(chat_route, &exchange, beats, guard)
    } else {
        whole_response(chat_route, &exchange, beats, guard).await
    }
}

fn stream_response(
    chat_route: ChatRoute,
    exchange: &Exchange,
    beats: Vec<super::Beat>,
    guard: AbandonGuard,
) -> Response<FakeBody> {
    let (encoder, content_type): (Box<dyn StreamEncoder>, _) = match chat_route {
        ChatRoute::OpenAiChat => (Box::new(openai::OpenAiStream::new(exchange)), EVENT_STREAM),
        ChatRoute::Ollama(endpoint) => (Box::new(ollama::OllamaStream::new(endpoint, exchange)), NDJSON),
        ChatRoute::LlamaCompletion => (Box::new(llamacpp::CompletionStream::new(exchange)), EVENT_STREAM),
    };
    let body = StreamBody::new(script::play_stream(beats, encoder, guard)).boxed_unsync();
    let mut response = Response::new(body);
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response.headers_mut().insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn whole_response(
    chat_route: ChatRoute,
    exchange: &Exchange,
    beats: Vec<super::Beat>,
    mut guard: AbandonGuard,
) -> Response<FakeBody> {
    let protocol = match chat_route {
        ChatRoute::OpenAiChat => Protocol::OpenAi,
        ChatRoute::Ollama(_) => Protocol::Ollama,
        ChatRoute::LlamaCompletion => Protocol::LlamaCpp,
    };
    let tool_calls_as_markup =
        matches!(chat_route, ChatRoute::Ollama(Endpoint::Generate) | ChatRoute::LlamaCompletion);
    let outcome = script::play_whole(beats, exchange, tool_calls_as_markup).await;
    guard.finish();
    match outcome {
        Outcome::Answer(answer) => match chat_route {
            ChatRoute::OpenAiChat => json_response(200, &openai::document(exchange, &answer)),
            ChatRoute::Ollama(endpoint) => whole(200, JSON, ollama::document(endpoint, exchange, &answer)),
            ChatRoute::LlamaCompletion => json_response(200, &llamacpp::document(exchange, &answer)),
        },
        Outcome::Error(message) => error_response(protocol, 500, &message, None),
        Outcome::Malformed(text) => whole(200, JSON, text),
        Outcome::Disconnect => {
            // A body that fails at once: the server closes the connection without a complete response.
            let cut =
                futures::stream::once(async { Err::<hyper::body::Frame<Bytes>, _>(ScriptedDisconnect) });
            let mut response = Response::new(StreamBody::new(cut).boxed_unsync());
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
            response
        }
    }
}
