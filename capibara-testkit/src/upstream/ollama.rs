//! The Ollama native wire format: `/api/chat` and `/api/generate` NDJSON lines, `/api/tags`.

use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Instant;

use bytes::Bytes;
use serde::Serialize;
use serde_json::json;

use super::Beat;
use super::markup::MarkupWriter;
use super::script::{Answer, AssembledToolCall, Exchange, ReasoningChannel, StreamEncoder, nanos};

/// Which Ollama endpoint is answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `/api/chat`: `message.content`, `message.thinking`, `message.tool_calls`.
    Chat,
    /// `/api/generate`: `response`, `thinking`; tool calls as markup in `response`.
    Generate,
}

/// Load time reported in the final line: the model is already loaded.
const LOAD_NANOS: u64 = 1_250_000;

#[derive(Serialize)]
struct ChatMessage<'a> {
    role: &'static str,
    content: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<serde_json::Value>,
}

/// Counts and nanosecond durations of the final line.
#[derive(Serialize)]
struct Totals<'a> {
    done_reason: &'a str,
    total_duration: u64,
    load_duration: u64,
    prompt_eval_count: u32,
    prompt_eval_duration: u64,
    eval_count: u32,
    eval_duration: u64,
}

/// One line (or the whole non-streamed answer) of either endpoint; field order as Ollama writes it.
#[derive(Serialize)]
struct Line<'a> {
    model: &'a str,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<ChatMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<&'a str>,
    done: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    totals: Option<Totals<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<Vec<u32>>,
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn tool_call_value(call: &AssembledToolCall) -> serde_json::Value {
    // Ollama sends arguments as a JSON object, not as JSON text.
    let arguments = serde_json::from_str::<serde_json::Value>(&call.arguments)
        .unwrap_or_else(|_| serde_json::Value::String(call.arguments.clone()));
    json!({ "function": { "name": call.name, "arguments": arguments } })
}

/// Builds one line of `endpoint`. `reasoning` is the thinking text; `tool_calls` only exist on chat.
struct LineWriter<'a> {
    endpoint: Endpoint,
    model: &'a str,
}

impl<'a> LineWriter<'a> {
    fn line(
        &self,
        content: &'a str,
        thinking: Option<&'a str>,
        tool_calls: Vec<serde_json::Value>,
        totals: Option<Totals<'a>>,
    ) -> Line<'a> {
        let done = totals.is_some();
        let (message, response, top_thinking, context) = match self.endpoint {
            Endpoint::Chat => {
                (Some(ChatMessage { role: "assistant", content, thinking, tool_calls }), None, None, None)
            }
            Endpoint::Generate => {
                (None, Some(content), thinking, done.then(|| vec![200_006, 17_360, 200_008]))
            }
        };
        Line {
            model: self.model,
            created_at: now_rfc3339(),
            message,
            response,
            thinking: top_thinking,
            done,
            totals,
            context,
        }
    }
}

fn totals(reason: &str, counts: (u32, u32), started: Instant, first_frame: Option<Instant>) -> Totals<'_> {
    let now = Instant::now();
    let first = first_frame.unwrap_or(now);
    let prompt_eval = nanos(first.saturating_duration_since(started));
    let eval = nanos(now.saturating_duration_since(first));
    Totals {
        done_reason: reason,
        total_duration: LOAD_NANOS.saturating_add(nanos(now.saturating_duration_since(started))),
        load_duration: LOAD_NANOS,
        prompt_eval_count: counts.0,
        prompt_eval_duration: prompt_eval,
        eval_count: counts.1,
        eval_duration: eval,
    }
}

fn ndjson(line: &impl Serialize) -> Bytes {
    let mut bytes = serde_json::to_vec(line).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// The fake's Ollama NDJSON stream.
pub(crate) struct OllamaStream {
    endpoint: Endpoint,
    exchange: Exchange,
    markup: MarkupWriter,
    usage: Option<(u32, u32)>,
    content_lines: u32,
    first_frame: Option<Instant>,
    pieces: Vec<String>,
}

impl OllamaStream {
    pub(crate) fn new(endpoint: Endpoint, exchange: &Exchange) -> Self {
        Self {
            endpoint,
            exchange: exchange.clone(),
            markup: exchange.markup_writer(),
            usage: None,
            content_lines: 0,
            first_frame: None,
            pieces: Vec::new(),
        }
    }

    fn push(&mut self, line: Bytes, out: &mut VecDeque<Bytes>) {
        self.first_frame.get_or_insert_with(Instant::now);
        out.push_back(line);
    }

    fn flush_pieces(&mut self, out: &mut VecDeque<Bytes>) {
        for piece in std::mem::take(&mut self.pieces) {
            let writer = LineWriter { endpoint: self.endpoint, model: &self.exchange.model };
            let line = ndjson(&writer.line(&piece, None, Vec::new(), None));
            self.push(line, out);
        }
    }
}

impl StreamEncoder for OllamaStream {
    fn encode(&mut self, beat: &Beat, out: &mut VecDeque<Bytes>) {
        let writer = LineWriter { endpoint: self.endpoint, model: &self.exchange.model };
        match beat {
            Beat::Content(text) => {
                self.content_lines += 1;
                self.markup.content(text, &mut self.pieces);
                self.flush_pieces(out);
            }
            Beat::Reasoning(text) => match self.exchange.reasoning {
                ReasoningChannel::Field(_) => {
                    let line = ndjson(&writer.line("", Some(text), Vec::new(), None));
                    self.push(line, out);
                }
                ReasoningChannel::Markup(_) => {
                    self.markup.reasoning(text, &mut self.pieces);
                    self.flush_pieces(out);
                }
            },
            Beat::ToolCall { id, name, arguments } => match self.endpoint {
                Endpoint::Chat => {
                    let call = AssembledToolCall {
                        id: id.clone(),
                        name: name.clone(),
                        arguments: arguments.clone(),
                    };
                    let line = ndjson(&writer.line("", None, vec![tool_call_value(&call)], None));
                    self.push(line, out);
                }
                Endpoint::Generate => {
                    self.markup.tool_call(name, arguments, &mut self.pieces);
                    self.flush_pieces(out);
                }
            },
            Beat::Usage { prompt_tokens, completion_tokens } => {
                self.usage = Some((*prompt_tokens, *completion_tokens))
            }
            Beat::Finish(reason) => {
                self.markup.close(&mut self.pieces);
                self.flush_pieces(out);
                let counts = self.usage.unwrap_or((10, self.content_lines));
                let writer = LineWriter { endpoint: self.endpoint, model: &self.exchange.model };
                let totals = totals(reason, counts, self.exchange.started, self.first_frame);
                out.push_back(ndjson(&writer.line("", None, Vec::new(), Some(totals))));
            }
            Beat::KeepAlive => out.push_back(Bytes::from_static(b"\n")),
            Beat::Malformed(text) => out.push_back(Bytes::from(format!("{text}\n"))),
            Beat::Error(message) => out.push_back(ndjson(&json!({ "error": message }))),
            Beat::Delay(_) | Beat::Disconnect => {}
        }
    }
}

/// The non-streamed answer: one object with `done` set when the script finished.
pub(crate) fn document(endpoint: Endpoint, exchange: &Exchange, answer: &Answer) -> Bytes {
    let writer = LineWriter { endpoint, model: &exchange.model };
    let thinking = (!answer.reasoning.is_empty()).then_some(answer.reasoning.as_str());
    let tool_calls = answer.tool_calls.iter().map(tool_call_value).collect();
    let totals =
        answer.finish.as_deref().map(|reason| totals(reason, answer.counts(), exchange.started, None));
    let mut body =
        serde_json::to_vec(&writer.line(&answer.content, thinking, tool_calls, totals)).unwrap_or_default();
    body.push(b'\n');
    Bytes::from(body)
}

/// Ollama's error document.
pub(crate) fn error_document(message: &str) -> serde_json::Value {
    json!({ "error": message })
}

/// `GET /api/tags`.
pub(crate) fn tags_document(model: &str) -> serde_json::Value {
    let mut hasher = DefaultHasher::new();
    model.hash(&mut hasher);
    let seed = hasher.finish();
    let digest: String = (0..4u64).map(|i| format!("{:016x}", seed.rotate_left(16 * i as u32) ^ i)).collect();
    json!({ "models": [{
        "name": model,
        "model": model,
        "modified_at": "2025-08-06T10:15:42.417934583+02:00",
        "size": 13_793_441_244u64,
        "digest": digest,
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": "gptoss",
            "families": ["gptoss"],
            "parameter_size": "20.9B",
            "quantization_level": "MXFP4",
        },
    }] })
}

/// `GET /api/version`.
pub(crate) fn version_document() -> serde_json::Value {
    json!({ "version": "0.12.6" })
}
