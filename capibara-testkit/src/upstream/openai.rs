//! The OpenAI `/v1/chat/completions` wire format, as vLLM, llama.cpp server and OpenAI write it.
//!
//! [`ChunkEncoder`] writes `chat.completion.chunk` SSE frames with everything that does not change
//! between chunks serialised once per answer, so it is cheap enough for the benchmark upstream
//! (`capibara-fake-upstream`) too.

use std::collections::VecDeque;
use std::io::Write as _;

use bytes::Bytes;
use serde_json::json;

use super::Beat;
use super::markup::MarkupWriter;
use super::script::{Answer, Exchange, ReasoningChannel, StreamEncoder, split_in_two};

/// The frame that ends every OpenAI stream.
pub const DONE_FRAME: &[u8] = b"data: [DONE]\n\n";
/// The SSE comment servers send to keep idle connections open.
pub const KEEP_ALIVE_FRAME: &[u8] = b": keep-alive\n\n";

/// Writes the SSE frames of one streamed `chat.completion.chunk` answer.
#[derive(Debug, Clone)]
pub struct ChunkEncoder {
    /// `data: {"id":…,"object":"chat.completion.chunk","created":…,"model":…,"choices":[`
    head: Vec<u8>,
    /// Whether the next delta still has to carry `"role":"assistant"`.
    role_pending: bool,
}

/// Opening of a choice whose delta follows.
const CHOICE_OPEN: &[u8] = br#"{"index":0,"delta":{"#;
/// The role, carried by the first delta only.
const ROLE: &[u8] = br#""role":"assistant","#;
/// Closing of a choice that has not finished.
const CHOICE_CLOSE: &[u8] = b"},\"finish_reason\":null}]}\n\n";

impl ChunkEncoder {
    /// An encoder for one answer with this response id (`chatcmpl-…`), creation time (Unix seconds) and
    /// model name.
    pub fn new(id: &str, created: u64, model: &str) -> Self {
        let mut head = Vec::with_capacity(96 + id.len() + model.len());
        head.extend_from_slice(b"data: {\"id\":");
        write_json_string(&mut head, id);
        head.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
        head.extend_from_slice(created.to_string().as_bytes());
        head.extend_from_slice(b",\"model\":");
        write_json_string(&mut head, model);
        head.extend_from_slice(b",\"choices\":[");
        Self { head, role_pending: true }
    }

    /// A content delta.
    pub fn content(&mut self, text: &str) -> Bytes {
        self.text_delta("content", text)
    }

    /// A text delta in the named field of `delta` (`content`, `reasoning_content` or `reasoning`).
    pub fn text_delta(&mut self, field: &str, text: &str) -> Bytes {
        let mut frame = self.open_delta(field.len() + text.len() + 8);
        write_json_string(&mut frame, field);
        frame.push(b':');
        write_json_string(&mut frame, text);
        frame.extend_from_slice(CHOICE_CLOSE);
        Bytes::from(frame)
    }

    /// The first delta of a tool call: its position in the answer, id, function name and the start of
    /// its arguments.
    pub fn tool_call_start(&mut self, index: u32, id: &str, name: &str, arguments: &str) -> Bytes {
        let call = json!([{
            "index": index, "id": id, "type": "function",
            "function": { "name": name, "arguments": arguments },
        }]);
        self.tool_call_frame(&call)
    }

    /// A later delta of a tool call, carrying more of its arguments.
    pub fn tool_call_arguments(&mut self, index: u32, arguments: &str) -> Bytes {
        self.tool_call_frame(&json!([{ "index": index, "function": { "arguments": arguments } }]))
    }

    /// The chunk with an empty delta and the finish reason (`stop`, `length`, `tool_calls`).
    pub fn finish(&mut self, reason: &str) -> Bytes {
        let mut frame = Vec::with_capacity(self.head.len() + 64);
        frame.extend_from_slice(&self.head);
        frame.extend_from_slice(br#"{"index":0,"delta":{},"finish_reason":"#);
        write_json_string(&mut frame, reason);
        frame.extend_from_slice(b"}]}\n\n");
        Bytes::from(frame)
    }

    /// The usage chunk (`"choices":[]`) sent after the finish chunk when the client asked for it.
    pub fn usage(&self, prompt_tokens: u32, completion_tokens: u32) -> Bytes {
        let mut frame = Vec::with_capacity(self.head.len() + 96);
        frame.extend_from_slice(&self.head);
        let total = prompt_tokens.saturating_add(completion_tokens);
        // Writing into a Vec cannot fail.
        let _ = write!(
            frame,
            "],\"usage\":{{\"prompt_tokens\":{prompt_tokens},\"completion_tokens\":{completion_tokens},\"total_tokens\":{total}}}}}\n\n"
        );
        Bytes::from(frame)
    }

    /// The error frame servers send when generation fails mid-stream.
    pub fn error(message: &str) -> Bytes {
        let error = json!({ "error": { "message": message, "type": "server_error" } });
        Bytes::from(format!("data: {error}\n\n"))
    }

    fn open_delta(&mut self, extra: usize) -> Vec<u8> {
        let mut frame = Vec::with_capacity(self.head.len() + CHOICE_OPEN.len() + ROLE.len() + extra + 32);
        frame.extend_from_slice(&self.head);
        frame.extend_from_slice(CHOICE_OPEN);
        if self.role_pending {
            frame.extend_from_slice(ROLE);
            self.role_pending = false;
        }
        frame
    }

    fn tool_call_frame(&mut self, calls: &serde_json::Value) -> Bytes {
        let mut frame = self.open_delta(64);
        frame.extend_from_slice(b"\"tool_calls\":");
        // Serialising a Value into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut frame, calls);
        frame.extend_from_slice(CHOICE_CLOSE);
        Bytes::from(frame)
    }
}

fn write_json_string(out: &mut Vec<u8>, text: &str) {
    // Serialising a string into a Vec cannot fail.
    let _ = serde_json::to_writer(out, text);
}

/// The fake's OpenAI stream: reasoning per style, usage held until after the finish chunk (as OpenAI
/// and vLLM order them), `[DONE]` after the finish.
pub(crate) struct OpenAiStream {
    chunks: ChunkEncoder,
    reasoning: ReasoningChannel,
    markup: MarkupWriter,
    include_usage: bool,
    usage: Option<(u32, u32)>,
    finished: bool,
    next_tool_index: u32,
    pieces: Vec<String>,
}

impl OpenAiStream {
    pub(crate) fn new(exchange: &Exchange) -> Self {
        let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
        Self {
            chunks: ChunkEncoder::new(&id, exchange.created, &exchange.model),
            reasoning: exchange.reasoning,
            markup: exchange.markup_writer(),
            include_usage: exchange.include_usage,
            usage: None,
            finished: false,
            next_tool_index: 0,
            pieces: Vec::new(),
        }
    }

    fn flush_pieces(&mut self, out: &mut VecDeque<Bytes>) {
        for piece in std::mem::take(&mut self.pieces) {
            out.push_back(self.chunks.content(&piece));
        }
    }
}

impl StreamEncoder for OpenAiStream {
    fn encode(&mut self, beat: &Beat, out: &mut VecDeque<Bytes>) {
        match beat {
            Beat::Content(text) => {
                self.markup.content(text, &mut self.pieces);
                self.flush_pieces(out);
            }
            Beat::Reasoning(text) => match self.reasoning {
                ReasoningChannel::Field(field) => out.push_back(self.chunks.text_delta(field, text)),
                ReasoningChannel::Markup(_) => {
                    self.markup.reasoning(text, &mut self.pieces);
                    self.flush_pieces(out);
                }
            },
            Beat::ToolCall { id, name, arguments } => {
                let index = self.next_tool_index;
                self.next_tool_index += 1;
                let (first, rest) = split_in_two(arguments);
                out.push_back(self.chunks.tool_call_start(index, id, name, first));
                if !rest.is_empty() {
                    out.push_back(self.chunks.tool_call_arguments(index, rest));
                }
            }
            Beat::Usage { prompt_tokens, completion_tokens } if self.include_usage => {
                if self.finished {
                    out.push_back(self.chunks.usage(*prompt_tokens, *completion_tokens));
                } else {
                    self.usage = Some((*prompt_tokens, *completion_tokens));
                }
            }
            Beat::Usage { .. } => {}
            Beat::Finish(reason) => {
                self.markup.close(&mut self.pieces);
                self.flush_pieces(out);
                out.push_back(self.chunks.finish(reason));
                if let Some((prompt, completion)) = self.usage.take() {
                    out.push_back(self.chunks.usage(prompt, completion));
                }
                out.push_back(Bytes::from_static(DONE_FRAME));
                self.finished = true;
            }
            Beat::KeepAlive => out.push_back(Bytes::from_static(KEEP_ALIVE_FRAME)),
            Beat::Malformed(text) => out.push_back(Bytes::from(format!("data: {text}\n\n"))),
            Beat::Error(message) => out.push_back(ChunkEncoder::error(message)),
            Beat::Delay(_) | Beat::Disconnect => {}
        }
    }
}

/// The non-streamed `chat.completion` document.
pub(crate) fn document(exchange: &Exchange, answer: &Answer) -> serde_json::Value {
    let mut message = json!({ "role": "assistant", "content": answer.content });
    if let ReasoningChannel::Field(field) = exchange.reasoning
        && !answer.reasoning.is_empty()
    {
        message[field] = json!(answer.reasoning);
    }
    if !answer.tool_calls.is_empty() {
        let calls: Vec<_> = answer
            .tool_calls
            .iter()
            .map(|call| {
                json!({ "id": call.id, "type": "function",
                        "function": { "name": call.name, "arguments": call.arguments } })
            })
            .collect();
        message["tool_calls"] = json!(calls);
    }
    let finish = answer.finish.as_deref();
    chat_completion(exchange.created, &exchange.model, &message, finish, answer.counts())
}

/// A non-streamed `chat.completion` document with one choice holding `message`.
pub fn chat_completion(
    created: u64,
    model: &str,
    message: &serde_json::Value,
    finish_reason: Option<&str>,
    (prompt_tokens, completion_tokens): (u32, u32),
) -> serde_json::Value {
    json!({
        "id": format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{ "index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason }],
        "usage": { "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                   "total_tokens": prompt_tokens.saturating_add(completion_tokens) },
    })
}

/// OpenAI's error document for a status.
pub fn error_document(status: u16, message: &str) -> serde_json::Value {
    let (kind, code) = match status {
        401 => ("invalid_request_error", json!("invalid_api_key")),
        404 => ("invalid_request_error", json!("model_not_found")),
        429 => ("requests", json!("rate_limit_exceeded")),
        400..=499 => ("invalid_request_error", serde_json::Value::Null),
        _ => ("server_error", serde_json::Value::Null),
    };
    json!({ "error": { "message": message, "type": kind, "param": null, "code": code } })
}

/// The `GET /v1/models` document listing one model.
pub fn models_document(model: &str, created: u64) -> serde_json::Value {
    json!({ "object": "list", "data": [{ "id": model, "object": "model", "created": created, "owned_by": "fake" }] })
}
