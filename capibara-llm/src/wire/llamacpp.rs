//! llama.cpp server's native protocol: `POST /completion` (SSE `data:` lines when streaming) and
//! `GET /health`. Its error bodies have the OpenAI shape ([`super::openai::ErrorBody`]).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::borrow_opt_str;
use super::openai::ErrorPayload;

/// `POST /completion` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionRequest {
    /// The whole rendered prompt.
    pub prompt: String,
    /// Most tokens to generate (`-1`: until end of sequence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_predict: Option<i32>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling mass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Top-k sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// Min-p sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f32>,
    /// Repetition penalty (1.0 = off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_penalty: Option<f32>,
    /// Presence penalty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
    /// Frequency penalty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
    /// Sampling seed (`-1`: random).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Stop strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
    /// Stream SSE chunks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Reuse the KV cache of a previous request with the same prompt prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_prompt: Option<bool>,
}

/// One streamed chunk (or the whole answer when not streaming), borrowing its text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionChunk<'a> {
    /// A piece of raw generated text (reasoning markup included).
    #[serde(borrow, default)]
    pub content: Cow<'a, str>,
    /// Set on the last chunk.
    #[serde(default)]
    pub stop: bool,
    /// Slot or choice index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// `eos`, `limit`, `word` or `none` (current servers), on the last chunk.
    #[serde(borrow, default, deserialize_with = "borrow_opt_str", skip_serializing_if = "Option::is_none")]
    pub stop_type: Option<Cow<'a, str>>,
    /// The stop string that ended generation, when one did.
    #[serde(borrow, default, deserialize_with = "borrow_opt_str", skip_serializing_if = "Option::is_none")]
    pub stopping_word: Option<Cow<'a, str>>,
    /// Generated tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_predicted: Option<u32>,
    /// Prompt tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_evaluated: Option<u32>,
    /// The prompt was cut to fit the context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    /// Speed measurements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timings: Option<Timings>,
    /// Model path or alias.
    #[serde(borrow, default, deserialize_with = "borrow_opt_str", skip_serializing_if = "Option::is_none")]
    pub model: Option<Cow<'a, str>>,
    /// Older servers: stopped at end of sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_eos: Option<bool>,
    /// Older servers: stopped at `n_predict`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_limit: Option<bool>,
    /// Older servers: stopped at a stop string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_word: Option<bool>,
    /// A mid-stream failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorPayload>,
}

impl CompletionChunk<'_> {
    /// Why generation stopped, in the current servers' words (`eos`, `limit`, `word`), read from
    /// `stop_type` or, on older servers, from the `stopped_*` flags. `None` unless this is the last
    /// chunk.
    pub fn stop_reason(&self) -> Option<&str> {
        if !self.stop {
            return None;
        }
        if let Some(kind) = self.stop_type.as_deref().filter(|kind| *kind != "none") {
            return Some(kind);
        }
        if self.stopped_limit == Some(true) {
            Some("limit")
        } else if self.stopped_word == Some(true) {
            Some("word")
        } else {
            Some("eos")
        }
    }
}

/// Speed measurements of an answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Prompt tokens processed (not served from cache).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_n: Option<u32>,
    /// Prompt processing time, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_ms: Option<f64>,
    /// Milliseconds per prompt token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_per_token_ms: Option<f64>,
    /// Prompt tokens per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_per_second: Option<f64>,
    /// Generated tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_n: Option<u32>,
    /// Generation time, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_ms: Option<f64>,
    /// Milliseconds per generated token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_per_token_ms: Option<f64>,
    /// Generated tokens per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_per_second: Option<f64>,
}

/// `GET /health` answer: `{"status":"ok"}`, or 503 with an error body while the model loads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthResponse {
    /// `ok` when ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// What is wrong, when something is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorPayload>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_chunk_borrows_and_final_chunk_says_why() {
        let chunk: CompletionChunk<'_> =
            serde_json::from_str(r#"{"content":"Hola","stop":false,"index":0}"#).unwrap();
        assert!(matches!(chunk.content, Cow::Borrowed("Hola")));
        assert_eq!(chunk.stop_reason(), None);
        let last: CompletionChunk<'_> = serde_json::from_str(
            r#"{"content":"","stop":true,"stop_type":"limit","tokens_predicted":5,"tokens_evaluated":9,"truncated":false,"timings":{"prompt_n":9,"predicted_per_second":31.5},"model":"gpt-oss"}"#,
        )
        .unwrap();
        assert_eq!(last.stop_reason(), Some("limit"));
        assert_eq!((last.tokens_evaluated, last.tokens_predicted), (Some(9), Some(5)));
    }

    #[test]
    fn older_servers_report_flags() {
        let last: CompletionChunk<'_> = serde_json::from_str(
            r#"{"content":"","stop":true,"stopped_word":true,"stopping_word":"Usuario:"}"#,
        )
        .unwrap();
        assert_eq!(last.stop_reason(), Some("word"));
        let last: CompletionChunk<'_> =
            serde_json::from_str(r#"{"content":"","stop":true,"stopped_eos":true}"#).unwrap();
        assert_eq!(last.stop_reason(), Some("eos"));
    }

    #[test]
    fn request_leaves_out_unset_fields_and_health_reads_both_shapes() {
        let request =
            CompletionRequest { prompt: "p".into(), stream: Some(true), ..CompletionRequest::default() };
        assert_eq!(serde_json::to_string(&request).unwrap(), r#"{"prompt":"p","stream":true}"#);
        let health: HealthResponse = serde_json::from_str(r#"{"status":"ok"}"#).unwrap();
        assert_eq!(health.status.as_deref(), Some("ok"));
        let health: HealthResponse = serde_json::from_str(
            r#"{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}"#,
        )
        .unwrap();
        assert_eq!(health.error.unwrap().message(), "Loading model");
    }
}
