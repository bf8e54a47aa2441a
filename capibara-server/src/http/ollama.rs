//! The Ollama-compatible API: `POST /api/chat` (bodies with `messages`), `POST /api/generate`,
//! `GET /api/tags`, `GET /api/version` — so the official `ollama` clients work against Capibara.
//!
//! Like Ollama, answers stream as NDJSON unless the request says `"stream": false`; reasoning is
//! returned in `thinking` only when the request sets `think`. Nothing is stored.

use std::borrow::Cow;
use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use capibara_core::chat::{
    AnswerBuilder, ChatRequest, FinishReason, Message, Role, SamplingOptions, StreamEvent, ToolCall,
};
use capibara_core::{Error, Result};
use capibara_llm::wire::ollama as wire;
use futures::StreamExt;

use super::chat::read_json_body;
use super::error::ApiError;
use super::json::parse;
use crate::app::Capibara;

/// Model names that mean "whatever Capibara is configured with".
const DEFAULT_MODEL_ALIASES: [&str; 3] = ["", "capibara", "default"];

/// Which Ollama answer shape to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Chat,
    Generate,
}

/// `POST /api/chat` with an Ollama body (dispatched here from the shared route).
pub(crate) async fn chat(app: Capibara, body: &[u8]) -> Response {
    let request: wire::ChatRequest = match parse(body) {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    let stream = request.stream.unwrap_or(true);
    let think = wants_thinking(request.think.as_ref());
    let messages = request
        .messages
        .into_iter()
        .enumerate()
        .map(|(index, m)| {
            let role: Role = m.role.parse().map_err(|e: Error| e.context(&format!("messages[{index}]")))?;
            let mut message = Message::new(role, m.content);
            message.tool_calls = m
                .tool_calls
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .map(|(i, call)| ToolCall {
                    id: format!("call_{i}"),
                    name: call.function.name,
                    arguments: call.function.arguments.to_string(),
                })
                .collect();
            Ok(message)
        })
        .collect::<Result<Vec<_>>>();
    let messages = match messages {
        Ok(messages) if messages.iter().all(|m| m.content.trim().is_empty() && m.tool_calls.is_empty()) => {
            return ApiError::from(Error::invalid("messages must contain some text")).into_response();
        }
        Ok(messages) => messages,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let core = ChatRequest {
        model: model_of(&request.model),
        messages,
        options: options(request.options),
        tools: Vec::new(),
    };
    run(app, core, request.model, stream, think, Shape::Chat).await
}

/// `POST /api/generate`: a prompt (and optional system prompt) answered as a completion.
pub(crate) async fn generate(State(app): State<Capibara>, request: Request) -> Response {
    let body = match read_json_body(&app, request).await {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    let request: wire::GenerateRequest = match parse(&body) {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    if request.prompt.trim().is_empty() {
        return ApiError::from(Error::invalid("prompt must not be empty")).into_response();
    }
    let mut messages = Vec::new();
    messages.extend(request.system.filter(|s| !s.trim().is_empty()).map(Message::system));
    messages.push(Message::user(request.prompt));
    let core = ChatRequest {
        model: model_of(&request.model),
        messages,
        options: options(request.options),
        tools: Vec::new(),
    };
    let think = wants_thinking(request.think.as_ref());
    run(app, core, request.model, request.stream.unwrap_or(true), think, Shape::Generate).await
}

fn model_of(requested: &str) -> Option<String> {
    Some(requested.to_owned()).filter(|m| !DEFAULT_MODEL_ALIASES.contains(&m.trim()))
}

fn wants_thinking(think: Option<&serde_json::Value>) -> bool {
    match think {
        Some(serde_json::Value::Bool(on)) => *on,
        Some(serde_json::Value::String(level)) => !level.is_empty(),
        _ => false,
    }
}

fn options(options: Option<wire::Options>) -> SamplingOptions {
    let Some(o) = options else { return SamplingOptions::default() };
    SamplingOptions {
        temperature: o.temperature,
        top_p: o.top_p,
        top_k: o.top_k,
        // Ollama uses -1 (and -2) for "no limit".
        max_tokens: o.num_predict.and_then(|n| u32::try_from(n).ok()),
        stop: o.stop.unwrap_or_default(),
        seed: o.seed.and_then(|s| u64::try_from(s).ok()),
        repeat_penalty: o.repeat_penalty,
        presence_penalty: o.presence_penalty,
        frequency_penalty: o.frequency_penalty,
    }
}

fn created_at() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Facts of the final line.
struct Totals<'a> {
    model: &'a str,
    finish: &'a FinishReason,
    answer: &'a AnswerBuilder,
    started: Instant,
    think: bool,
    whole: bool,
}

fn final_line(shape: Shape, totals: &Totals<'_>) -> Bytes {
    let usage = totals.answer.usage.unwrap_or_default();
    let total = u64::try_from(totals.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let content: &str = if totals.whole { &totals.answer.content } else { "" };
    let thinking = (totals.whole && totals.think && !totals.answer.reasoning.is_empty())
        .then_some(Cow::Borrowed(totals.answer.reasoning.as_str()));
    let done_reason = Some(Cow::Borrowed(totals.finish.as_str()));
    match shape {
        Shape::Chat => ndjson_line(&wire::ChatResponse {
            model: Cow::Borrowed(totals.model),
            created_at: Cow::Owned(created_at()),
            message: Some(wire::ResponseMessage {
                role: Cow::Borrowed("assistant"),
                content: Cow::Borrowed(content),
                thinking,
                tool_calls: None,
            }),
            done: true,
            done_reason,
            total_duration: Some(total),
            load_duration: Some(0),
            prompt_eval_count: Some(usage.prompt_tokens),
            prompt_eval_duration: None,
            eval_count: Some(usage.completion_tokens),
            eval_duration: None,
            error: None,
        }),
        Shape::Generate => ndjson_line(&wire::GenerateResponse {
            model: Cow::Borrowed(totals.model),
            created_at: Cow::Owned(created_at()),
            response: Cow::Borrowed(content),
            thinking,
            done: true,
            done_reason,
            context: None,
            total_duration: Some(total),
            load_duration: Some(0),
            prompt_eval_count: Some(usage.prompt_tokens),
            prompt_eval_duration: None,
            eval_count: Some(usage.completion_tokens),
            eval_duration: None,
            error: None,
        }),
    }
}

fn delta_line(shape: Shape, model: &str, content: &str, thinking: Option<&str>) -> Bytes {
    match shape {
        Shape::Chat => ndjson_line(&wire::ChatResponse {
            model: Cow::Borrowed(model),
            created_at: Cow::Owned(created_at()),
            message: Some(wire::ResponseMessage {
                role: Cow::Borrowed("assistant"),
                content: Cow::Borrowed(content),
                thinking: thinking.map(Cow::Borrowed),
                tool_calls: None,
            }),
            ..wire::ChatResponse::default()
        }),
        Shape::Generate => ndjson_line(&wire::GenerateResponse {
            model: Cow::Borrowed(model),
            created_at: Cow::Owned(created_at()),
            response: Cow::Borrowed(content),
            thinking: thinking.map(Cow::Borrowed),
            ..wire::GenerateResponse::default()
        }),
    }
}

fn ndjson_line<T: serde::Serialize>(value: &T) -> Bytes {
    let mut line = serde_json::to_vec(value).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

async fn run(
    app: Capibara,
    request: ChatRequest,
    requested_model: String,
    stream: bool,
    think: bool,
    shape: Shape,
) -> Response {
    let started = Instant::now();
    if let Err(error) = request.validate() {
        return ApiError::from(error).into_response();
    }
    let llm = match app.llm() {
        Ok(llm) => llm,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let mut answer = match llm.chat_stream(request).await {
        Ok(answer) => answer,
        Err(error) => return ApiError::from(error).into_response(),
    };
    // Answer with the name the client asked for, as Ollama does.
    let model = if requested_model.trim().is_empty() { answer.model.clone() } else { requested_model };
    if !stream {
        let mut builder = AnswerBuilder::default();
        let timeout = app.config().server.request_timeout;
        let collected = tokio::time::timeout(timeout, async {
            while let Some(event) = answer.next().await {
                let event = event?;
                builder.push(&event);
                if let StreamEvent::Done { finish_reason } = event {
                    return Ok(finish_reason);
                }
            }
            Err(Error::upstream(502, "the answer stream ended without a final event"))
        })
        .await
        .unwrap_or_else(|_| Err(Error::Timeout(format!("the answer took longer than {timeout:?}"))));
        return match collected {
            Ok(finish) => {
                let totals =
                    Totals { model: &model, finish: &finish, answer: &builder, started, think, whole: true };
                ndjson_response(Body::from(final_line(shape, &totals)), "application/json")
            }
            Err(error) => ApiError::from(error).into_response(),
        };
    }
    let lines = futures::stream::unfold(
        (answer, AnswerBuilder::default(), false),
        move |(mut answer, mut builder, finished)| {
            let model = model.clone();
            async move {
                if finished {
                    return None;
                }
                loop {
                    let line = match answer.next().await {
                        Some(Ok(StreamEvent::Done { finish_reason })) => {
                            let totals = Totals {
                                model: &model,
                                finish: &finish_reason,
                                answer: &builder,
                                started,
                                think,
                                whole: false,
                            };
                            return Some((final_line(shape, &totals), (answer, builder, true)));
                        }
                        Some(Ok(event)) => {
                            builder.push(&event);
                            match &event {
                                StreamEvent::Content { delta } => delta_line(shape, &model, delta, None),
                                StreamEvent::Reasoning { delta } if think => {
                                    delta_line(shape, &model, "", Some(delta))
                                }
                                _ => continue,
                            }
                        }
                        Some(Err(error)) => error_line(&error),
                        None => {
                            error_line(&Error::upstream(502, "the answer stream ended without a final event"))
                        }
                    };
                    let finished = line.starts_with(b"{\"error\"");
                    return Some((line, (answer, builder, finished)));
                }
            }
        },
    );
    let lines = super::sse::coalesce(lines).map(Ok::<_, std::convert::Infallible>);
    ndjson_response(Body::from_stream(lines), "application/x-ndjson")
}

fn error_line(error: &Error) -> Bytes {
    ndjson_line(&wire::ErrorResponse { error: error.to_string() })
}

fn ndjson_response(body: Body, content_type: &'static str) -> Response {
    let mut response = Response::new(body);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// `GET /api/tags`: the backend's models in Ollama's shape.
pub(crate) async fn tags(State(app): State<Capibara>) -> Result<Json<wire::TagsResponse>, ApiError> {
    let Ok(llm) = app.llm() else { return Ok(Json(wire::TagsResponse::default())) };
    let models = llm.models().await?;
    Ok(Json(wire::TagsResponse {
        models: models
            .into_iter()
            .map(|m| {
                // Ollama upstreams describe their models in this very shape; keep it.
                m.details.and_then(|d| serde_json::from_value::<wire::ModelEntry>(d).ok()).unwrap_or_else(
                    || wire::ModelEntry {
                        name: m.id.clone(),
                        model: Some(m.id),
                        ..wire::ModelEntry::default()
                    },
                )
            })
            .collect(),
    }))
}

/// `GET /api/version`.
pub(crate) async fn version() -> Json<wire::VersionResponse> {
    Json(wire::VersionResponse { version: env!("CARGO_PKG_VERSION").to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_num_predict_means_no_limit() {
        let o = options(Some(wire::Options {
            num_predict: Some(-1),
            seed: Some(-5),
            ..wire::Options::default()
        }));
        assert_eq!(o.max_tokens, None);
        assert_eq!(o.seed, None);
        let o = options(Some(wire::Options { num_predict: Some(64), ..wire::Options::default() }));
        assert_eq!(o.max_tokens, Some(64));
    }

    #[test]
    fn thinking_is_off_unless_asked() {
        assert!(!wants_thinking(None));
        assert!(!wants_thinking(Some(&serde_json::json!(false))));
        assert!(wants_thinking(Some(&serde_json::json!(true))));
        assert!(wants_thinking(Some(&serde_json::json!("high"))));
    }
}
