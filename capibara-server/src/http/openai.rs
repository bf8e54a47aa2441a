//! The OpenAI-compatible API: `POST /v1/chat/completions` (streamed and whole) and `GET /v1/models`,
//! so the official `openai` clients work against Capibara unchanged.
//!
//! This API is stateless, like OpenAI's: the client sends the whole conversation each time and
//! nothing is stored. Errors use OpenAI's error shape.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use capibara_core::chat::{
    ChatRequest, ChatResponse, Message, Role, SamplingOptions, StreamEvent, ToolCall, ToolSpec, Usage,
};
use capibara_core::llm::ChatStream;
use capibara_core::{Error, Result};
use capibara_llm::wire::openai as wire;
use futures::Stream;

use super::chat::read_json_body;
use super::error::{ApiError, OpenAiError, OpenAiErrorBody};
use super::sse;
use crate::app::Capibara;

/// Model names that mean "whatever Capibara is configured with".
const DEFAULT_MODEL_ALIASES: [&str; 3] = ["", "capibara", "default"];

/// `POST /v1/chat/completions`.
pub(crate) async fn chat_completions(State(app): State<Capibara>, request: Request) -> Response {
    match answer(&app, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn answer(app: &Capibara, request: Request) -> Result<Response, OpenAiError> {
    let body = read_json_body(app, request).await?;
    let request: wire::ChatCompletionRequest = super::json::parse(&body)?;
    let stream = request.stream.unwrap_or(false);
    let include_usage = request.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false);
    let chat = to_core(request)?;
    if stream {
        let answer = app.chat_stream(chat).await?;
        let chunks = ChunkStream::new(answer, include_usage);
        Ok(sse::response(Body::from_stream(sse::with_keep_alive(sse::coalesce(chunks)))))
    } else {
        Ok(Json(completion(app.chat(chat).await?)).into_response())
    }
}

/// Reads an OpenAI request into Capibara's.
fn to_core(request: wire::ChatCompletionRequest) -> Result<ChatRequest> {
    let messages = request
        .messages
        .into_iter()
        .enumerate()
        .map(|(index, message)| {
            let role: Role =
                message.role.parse().map_err(|e: Error| e.context(&format!("messages[{index}]")))?;
            let content = message.content.as_ref().map(|c| c.text().into_owned()).unwrap_or_default();
            let mut core = Message::new(role, content);
            core.tool_call_id = message.tool_call_id;
            core.tool_calls = message
                .tool_calls
                .unwrap_or_default()
                .into_iter()
                .map(|call| ToolCall {
                    id: call.id,
                    name: call.function.name,
                    arguments: call.function.arguments,
                })
                .collect();
            Ok(core)
        })
        .collect::<Result<Vec<_>>>()?;
    let model = Some(request.model).filter(|m| !DEFAULT_MODEL_ALIASES.contains(&m.trim()));
    let tools = request
        .tools
        .unwrap_or_default()
        .into_iter()
        .map(|tool| ToolSpec {
            name: tool.function.name,
            description: tool.function.description,
            parameters: tool.function.parameters.unwrap_or(serde_json::Value::Null),
        })
        .collect();
    Ok(ChatRequest {
        model,
        messages,
        options: SamplingOptions {
            temperature: request.temperature,
            top_p: request.top_p,
            top_k: request.top_k,
            max_tokens: request.max_completion_tokens.or(request.max_tokens),
            stop: request.stop.map(wire::Stop::into_vec).unwrap_or_default(),
            seed: request.seed,
            repeat_penalty: request.repetition_penalty,
            presence_penalty: request.presence_penalty,
            frequency_penalty: request.frequency_penalty,
        },
        tools,
    })
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn completion_id() -> String {
    format!("chatcmpl-{}", uuid::Uuid::new_v4().simple())
}

fn wire_usage(usage: Usage) -> wire::Usage {
    wire::Usage {
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        total_tokens: usage.total_tokens(),
    }
}

fn wire_tool_call(call: ToolCall) -> wire::ToolCall {
    wire::ToolCall {
        id: call.id,
        kind: "function".to_owned(),
        function: wire::FunctionCall { name: call.name, arguments: call.arguments },
    }
}

fn completion(answer: ChatResponse) -> wire::ChatCompletion {
    let tool_calls =
        (!answer.tool_calls.is_empty()).then(|| answer.tool_calls.into_iter().map(wire_tool_call).collect());
    wire::ChatCompletion {
        id: completion_id(),
        object: "chat.completion".to_owned(),
        created: unix_now(),
        model: answer.model,
        choices: vec![wire::Choice {
            index: 0,
            message: wire::ResponseMessage {
                role: "assistant".to_owned(),
                content: Some(answer.content),
                reasoning_content: answer.reasoning,
                reasoning: None,
                tool_calls,
            },
            finish_reason: Some(answer.finish_reason.as_str().to_owned()),
        }],
        usage: answer.usage.map(wire_usage),
    }
}

/// Turns a [`ChatStream`] into OpenAI SSE frames: chunks as events arrive, the finish chunk, the usage
/// chunk when asked for, `[DONE]`; an error frame (and no `[DONE]`) when the answer breaks off.
struct ChunkStream {
    answer: ChatStream,
    id: String,
    created: u64,
    /// `data: {"id":…,"object":…,"created":…,"model":…,"choices":[{"index":0,"delta":{`, encoded once
    /// per answer: content frames only add the delta and a fixed suffix.
    delta_prefix: Vec<u8>,
    include_usage: bool,
    sent_role: bool,
    usage: Option<Usage>,
    pending: VecDeque<Bytes>,
    finished: bool,
}

impl ChunkStream {
    fn new(answer: ChatStream, include_usage: bool) -> Self {
        let id = completion_id();
        let created = unix_now();
        let head = wire::ChatCompletionChunk {
            id: Cow::Borrowed(&id),
            object: Cow::Borrowed("chat.completion.chunk"),
            created,
            model: Cow::Borrowed(&answer.model),
            choices: wire::Choices::new(),
            usage: None,
            error: None,
        };
        // `{…,"choices":[]}` → everything before `]}`, then the one choice's delta opened.
        let mut delta_prefix = b"data: ".to_vec();
        let _ = serde_json::to_writer(&mut delta_prefix, &head);
        delta_prefix.truncate(delta_prefix.len() - 2);
        delta_prefix.extend_from_slice(br#"{"index":0,"delta":{"#);
        Self {
            answer,
            id,
            created,
            delta_prefix,
            include_usage,
            sent_role: false,
            usage: None,
            pending: VecDeque::new(),
            finished: false,
        }
    }

    fn chunk<'a>(&'a self, choices: wire::Choices<'a>, usage: Option<wire::Usage>) -> Bytes {
        sse::json_frame(&wire::ChatCompletionChunk {
            id: Cow::Borrowed(&self.id),
            object: Cow::Borrowed("chat.completion.chunk"),
            created: self.created,
            model: Cow::Borrowed(&self.answer.model),
            choices,
            usage,
            error: None,
        })
    }

    fn delta_frame(&mut self, mut delta: wire::Delta<'_>) -> Bytes {
        if !self.sent_role {
            delta.role = Some(Cow::Borrowed("assistant"));
            self.sent_role = true;
        }
        self.chunk(wire::Choices::one(wire::ChunkChoice { index: 0, delta, finish_reason: None }), None)
    }

    /// A content or reasoning chunk: the same bytes as serialising a [`wire::ChatCompletionChunk`]
    /// with that delta, written from the pre-encoded prefix (this is the per-token hot path).
    fn text_frame(&mut self, field: &str, text: &str) -> Bytes {
        let mut frame = Vec::with_capacity(self.delta_prefix.len() + field.len() + text.len() + 64);
        frame.extend_from_slice(&self.delta_prefix);
        if !self.sent_role {
            frame.extend_from_slice(br#""role":"assistant","#);
            self.sent_role = true;
        }
        frame.push(b'"');
        frame.extend_from_slice(field.as_bytes());
        frame.extend_from_slice(b"\":");
        // Writing a string into memory cannot fail.
        let _ = serde_json::to_writer(&mut frame, text);
        frame.extend_from_slice(b"},\"finish_reason\":null}]}\n\n");
        Bytes::from(frame)
    }

    /// Frames for one event; `Done` queues the finish chunk, the usage chunk and `[DONE]`.
    fn frames_for(&mut self, event: StreamEvent) -> Option<Bytes> {
        match event {
            StreamEvent::Content { delta } => Some(self.text_frame("content", &delta)),
            StreamEvent::Reasoning { delta } => Some(self.text_frame("reasoning_content", &delta)),
            StreamEvent::ToolCall { call } => {
                let call = wire::ToolCallDelta {
                    index: 0,
                    id: Some(Cow::Owned(call.id)),
                    kind: Some(Cow::Borrowed("function")),
                    function: Some(wire::FunctionCallDelta {
                        name: Some(Cow::Owned(call.name)),
                        arguments: Some(Cow::Owned(call.arguments)),
                    }),
                };
                Some(self.delta_frame(wire::Delta { tool_calls: Some(vec![call]), ..wire::Delta::default() }))
            }
            StreamEvent::Usage { usage } => {
                self.usage = Some(usage);
                None
            }
            StreamEvent::Done { finish_reason } => {
                let finish = self.chunk(
                    wire::Choices::one(wire::ChunkChoice {
                        index: 0,
                        delta: wire::Delta::default(),
                        finish_reason: Some(Cow::Borrowed(finish_reason.as_str())),
                    }),
                    None,
                );
                if self.include_usage {
                    let usage = self.usage.unwrap_or_default();
                    let frame = self.chunk(wire::Choices::new(), Some(wire_usage(usage)));
                    self.pending.push_back(frame);
                }
                self.pending.push_back(Bytes::from_static(b"data: [DONE]\n\n"));
                self.finished = true;
                Some(finish)
            }
        }
    }
}

impl Stream for ChunkStream {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Poll::Ready(Some(frame));
            }
            if self.finished {
                return Poll::Ready(None);
            }
            match Pin::new(&mut self.answer).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    self.finished = true;
                    let error =
                        ApiError::from(Error::upstream(502, "the answer stream ended without a final event"));
                    return Poll::Ready(Some(sse::json_frame(&OpenAiErrorBody::of(&error))));
                }
                Poll::Ready(Some(Err(error))) => {
                    self.finished = true;
                    return Poll::Ready(Some(sse::json_frame(&OpenAiErrorBody::of(&ApiError::from(error)))));
                }
                Poll::Ready(Some(Ok(event))) => {
                    if let Some(frame) = self.frames_for(event) {
                        return Poll::Ready(Some(frame));
                    }
                }
            }
        }
    }
}

/// `GET /v1/models`: the configured backend's models (empty when none is configured).
pub(crate) async fn models(State(app): State<Capibara>) -> Result<Json<wire::ModelList>, OpenAiError> {
    let Ok(llm) = app.llm() else {
        return Ok(Json(wire::ModelList { object: "list".to_owned(), data: Vec::new() }));
    };
    let models = llm.models().await?;
    Ok(Json(wire::ModelList {
        object: "list".to_owned(),
        data: models
            .into_iter()
            .map(|m| wire::Model {
                id: m.id,
                object: "model".to_owned(),
                created: Some(0),
                owned_by: Some(m.backend),
                max_model_len: m.context_length,
                meta: None,
            })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_map_to_core_with_every_option() {
        let request: wire::ChatCompletionRequest = serde_json::from_value(serde_json::json!({
            "model": "capibara",
            "messages": [
                {"role": "developer", "content": "sé breve"},
                {"role": "user", "content": [{"type": "text", "text": "hola"}]}
            ],
            "max_completion_tokens": 10, "max_tokens": 99, "stop": "FIN", "temperature": 0.2, "seed": 7
        }))
        .unwrap();
        let core = to_core(request).unwrap();
        assert_eq!(core.model, None);
        assert_eq!(core.messages[0].role, Role::System);
        assert_eq!(core.messages[1].content, "hola");
        assert_eq!(core.options.max_tokens, Some(10));
        assert_eq!(core.options.stop, vec!["FIN".to_owned()]);
        assert_eq!(core.options.seed, Some(7));
    }

    #[tokio::test]
    async fn fast_frames_are_exactly_the_wire_serialisation() {
        let model = "gpt-oss:20b \"x\"";
        let mut fast = ChunkStream::new(ChatStream::new(model, "b", futures::stream::empty()), false);
        let mut slow = ChunkStream::new(ChatStream::new(model, "b", futures::stream::empty()), false);
        slow.id.clone_from(&fast.id);
        slow.created = fast.created;
        for (field, text) in
            [("content", "Hola \"mundo\"\n"), ("content", "ñ"), ("reasoning_content", "pienso")]
        {
            let mut delta = wire::Delta::default();
            if field == "content" {
                delta.content = Some(Cow::Borrowed(text));
            } else {
                delta.reasoning_content = Some(Cow::Borrowed(text));
            }
            assert_eq!(fast.text_frame(field, text), slow.delta_frame(delta));
        }
    }

    #[test]
    fn unknown_roles_are_invalid_input_naming_the_message() {
        let request: wire::ChatCompletionRequest = serde_json::from_value(serde_json::json!({
            "model": "m", "messages": [{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}]
        }))
        .unwrap();
        let error = to_core(request).unwrap_err();
        assert_eq!(error.code(), "invalid_input");
        assert!(error.to_string().contains("messages[1]"));
    }
}
