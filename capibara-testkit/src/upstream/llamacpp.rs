//! The llama.cpp server native wire format: `/completion` SSE chunks, `/health`, `/props`, `/v1/models`.
//! The model's raw text passes through, so reasoning and tool calls arrive as markup in `content`.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use serde_json::json;

use super::Beat;
use super::markup::MarkupWriter;
use super::script::{Answer, Exchange, StreamEncoder};

/// llama.cpp's `stop_type` for an OpenAI-style finish reason.
fn stop_type(reason: &str) -> &str {
    match reason {
        "stop" => "eos",
        "length" => "limit",
        other => other,
    }
}

fn millis(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The last chunk (or the non-streamed answer): totals, timings and the model.
fn final_object(
    content: &str,
    reason: Option<&str>,
    counts: (u32, u32),
    model: &str,
    started: Instant,
) -> serde_json::Value {
    let (evaluated, predicted) = counts;
    let elapsed = millis(started.elapsed());
    // Split the wall time as a server does: a short prompt phase, the rest generating.
    let prompt_ms = elapsed / 10.0;
    let predicted_ms = elapsed - prompt_ms;
    let per = |ms: f64, n: u32| if n == 0 { 0.0 } else { ms / f64::from(n) };
    let rate = |ms: f64, n: u32| if ms <= 0.0 { 0.0 } else { f64::from(n) * 1000.0 / ms };
    json!({
        "index": 0,
        "content": content,
        "stop": reason.is_some(),
        "stop_type": reason.map_or("none", stop_type),
        "stopping_word": "",
        "tokens_predicted": predicted,
        "tokens_evaluated": evaluated,
        "tokens_cached": evaluated.saturating_add(predicted),
        "truncated": false,
        "timings": {
            "prompt_n": evaluated,
            "prompt_ms": prompt_ms,
            "prompt_per_token_ms": per(prompt_ms, evaluated),
            "prompt_per_second": rate(prompt_ms, evaluated),
            "predicted_n": predicted,
            "predicted_ms": predicted_ms,
            "predicted_per_token_ms": per(predicted_ms, predicted),
            "predicted_per_second": rate(predicted_ms, predicted),
        },
        "model": model,
    })
}

fn sse(value: &serde_json::Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// The fake's `/completion` SSE stream.
pub(crate) struct CompletionStream {
    exchange: Exchange,
    markup: MarkupWriter,
    usage: Option<(u32, u32)>,
    content_chunks: u32,
    pieces: Vec<String>,
}

impl CompletionStream {
    pub(crate) fn new(exchange: &Exchange) -> Self {
        Self {
            exchange: exchange.clone(),
            markup: exchange.markup_writer(),
            usage: None,
            content_chunks: 0,
            pieces: Vec::new(),
        }
    }

    fn flush_pieces(&mut self, out: &mut VecDeque<Bytes>) {
        for piece in self.pieces.drain(..) {
            out.push_back(sse(&json!({ "content": piece, "stop": false, "index": 0 })));
        }
    }
}

impl StreamEncoder for CompletionStream {
    fn encode(&mut self, beat: &Beat, out: &mut VecDeque<Bytes>) {
        match beat {
            Beat::Content(text) => {
                self.content_chunks += 1;
                self.markup.content(text, &mut self.pieces);
                self.flush_pieces(out);
            }
            Beat::Reasoning(text) => {
                self.markup.reasoning(text, &mut self.pieces);
                self.flush_pieces(out);
            }
            Beat::ToolCall { name, arguments, .. } => {
                self.markup.tool_call(name, arguments, &mut self.pieces);
                self.flush_pieces(out);
            }
            Beat::Usage { prompt_tokens, completion_tokens } => {
                self.usage = Some((*prompt_tokens, *completion_tokens))
            }
            Beat::Finish(reason) => {
                self.markup.close(&mut self.pieces);
                self.flush_pieces(out);
                let counts = self.usage.unwrap_or((10, self.content_chunks));
                let last =
                    final_object("", Some(reason), counts, &self.exchange.model, self.exchange.started);
                out.push_back(sse(&last));
            }
            Beat::KeepAlive => out.push_back(Bytes::from_static(b": keep-alive\n\n")),
            Beat::Malformed(text) => out.push_back(Bytes::from(format!("data: {text}\n\n"))),
            Beat::Error(message) => {
                out.push_back(sse(
                    &json!({ "error": { "code": 500, "message": message, "type": "server_error" } }),
                ));
            }
            Beat::Delay(_) | Beat::Disconnect => {}
        }
    }
}

/// The non-streamed `/completion` answer.
pub(crate) fn document(exchange: &Exchange, answer: &Answer) -> serde_json::Value {
    final_object(
        &answer.content,
        answer.finish.as_deref(),
        answer.counts(),
        &exchange.model,
        exchange.started,
    )
}

/// llama.cpp's error document for a status.
pub(crate) fn error_document(status: u16, message: &str) -> serde_json::Value {
    let kind = match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        501 => "not_supported_error",
        503 => "unavailable_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    };
    json!({ "error": { "code": status, "message": message, "type": kind } })
}

/// `GET /health` while the model is loaded.
pub(crate) fn health_document() -> serde_json::Value {
    json!({ "status": "ok" })
}

/// `GET /health` (and every info route) while the model is loading.
pub(crate) fn loading_document() -> serde_json::Value {
    error_document(503, "Loading model")
}

/// `GET /v1/models`.
pub(crate) fn models_document(model: &str, created: u64) -> serde_json::Value {
    json!({
        "models": [{ "name": model, "model": model, "modified_at": "", "size": "", "digest": "",
                     "type": "model", "description": "", "tags": [""], "capabilities": ["completion"],
                     "parameters": "", "details": { "parent_model": "", "format": "gguf", "family": "",
                     "families": [""], "parameter_size": "", "quantization_level": "" } }],
        "object": "list",
        "data": [{ "id": model, "object": "model", "created": created, "owned_by": "llamacpp",
                   "meta": { "vocab_type": 2, "n_vocab": 201_088, "n_ctx_train": 131_072, "n_embd": 2880,
                             "n_params": 20_914_757_184u64, "size": 12_109_566_560u64 } }],
    })
}

/// `GET /props`.
pub(crate) fn props_document(model: &str) -> serde_json::Value {
    json!({
        "default_generation_settings": { "n_ctx": 8192, "params": { "n_predict": -1, "temperature": 0.8,
                                          "top_k": 40, "top_p": 0.95, "seed": -1, "stream": false } },
        "total_slots": 1,
        "model_alias": model,
        "model_path": format!("/models/{model}.gguf"),
        "chat_template": "{{ bos_token }}{% for message in messages %}{{ message.content }}{% endfor %}",
        "modalities": { "vision": false, "audio": false },
        "build_info": "b6527-fake",
    })
}
