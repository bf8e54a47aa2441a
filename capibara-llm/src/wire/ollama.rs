//! Ollama's native protocol: `POST /api/chat`, `POST /api/generate` (NDJSON when streaming),
//! `GET /api/tags`, and its error body.
//!
//! Stream lines ([`ChatResponse`], [`GenerateResponse`]) borrow their text from the line being
//! decoded; durations are nanoseconds, as Ollama reports them.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::borrow_opt_str;

/// `POST /api/chat` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// Model tag (e.g. `gpt-oss:20b`).
    pub model: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Functions the model may call (OpenAI tool shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<super::openai::Tool>>,
    /// Stream NDJSON lines (Ollama's default is `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// `"json"` or a JSON Schema for structured output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<serde_json::Value>,
    /// Model options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Options>,
    /// Reasoning: `true`/`false`, or `"low"`/`"medium"`/`"high"` for GPT-OSS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think: Option<serde_json::Value>,
    /// How long to keep the model loaded: a duration string (`"5m"`) or seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<serde_json::Value>,
}

/// `POST /api/generate` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerateRequest {
    /// Model tag.
    pub model: String,
    /// The prompt (Ollama wraps it in the model's template unless `raw`).
    #[serde(default)]
    pub prompt: String,
    /// Text after the completion (fill-in-the-middle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// System prompt, replacing the model's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Prompt template, replacing the model's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Send the prompt without any template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<bool>,
    /// Base64 images for multimodal models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
    /// Stream NDJSON lines (Ollama's default is `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// `"json"` or a JSON Schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<serde_json::Value>,
    /// Model options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Options>,
    /// Reasoning switch or level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think: Option<serde_json::Value>,
    /// How long to keep the model loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<serde_json::Value>,
}

/// Model options (`options`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Options {
    /// Context window, in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_ctx: Option<u32>,
    /// Most tokens to generate (`-1`: unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_predict: Option<i32>,
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
    /// Sampling seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Stop strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
}

/// A message of a chat request or a whole chat answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// Text.
    #[serde(default)]
    pub content: String,
    /// Reasoning of an assistant message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    /// Base64 images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
    /// Calls made by an assistant message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// For `tool` messages: the function whose result this is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
}

/// A tool call; Ollama sends each call whole, with arguments as a JSON object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Call id (recent Ollama versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The call.
    pub function: FunctionCall,
}

/// Function name and arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// Position among the answer's calls (recent Ollama versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// Function name.
    pub name: String,
    /// Arguments, as a JSON object.
    #[serde(default)]
    pub arguments: serde_json::Value,
}

/// One `/api/chat` stream line (or the whole answer when not streaming).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse<'a> {
    /// Model tag.
    #[serde(borrow, default)]
    pub model: Cow<'a, str>,
    /// RFC 3339 time.
    #[serde(borrow, default)]
    pub created_at: Cow<'a, str>,
    /// What this line adds.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub message: Option<ResponseMessage<'a>>,
    /// Set on the last line.
    #[serde(default)]
    pub done: bool,
    /// `stop`, `length`, `load`, … on the last line.
    #[serde(borrow, default, deserialize_with = "borrow_opt_str", skip_serializing_if = "Option::is_none")]
    pub done_reason: Option<Cow<'a, str>>,
    /// Whole request, in nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_duration: Option<u64>,
    /// Model loading, in nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_duration: Option<u64>,
    /// Prompt tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_eval_count: Option<u32>,
    /// Prompt processing, in nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_eval_duration: Option<u64>,
    /// Generated tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_count: Option<u32>,
    /// Generation, in nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_duration: Option<u64>,
    /// A mid-stream failure (`{"error": "…"}` line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The assistant message piece of a chat stream line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseMessage<'a> {
    /// `assistant`.
    #[serde(borrow, default)]
    pub role: Cow<'a, str>,
    /// A piece of the visible answer.
    #[serde(borrow, default)]
    pub content: Cow<'a, str>,
    /// A piece of reasoning.
    #[serde(borrow, default, deserialize_with = "borrow_opt_str", skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Cow<'a, str>>,
    /// Complete tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
}

/// One `/api/generate` stream line (or the whole answer when not streaming).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerateResponse<'a> {
    /// Model tag.
    #[serde(borrow, default)]
    pub model: Cow<'a, str>,
    /// RFC 3339 time.
    #[serde(borrow, default)]
    pub created_at: Cow<'a, str>,
    /// A piece of the visible answer.
    #[serde(borrow, default)]
    pub response: Cow<'a, str>,
    /// A piece of reasoning.
    #[serde(borrow, default, deserialize_with = "borrow_opt_str", skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Cow<'a, str>>,
    /// Set on the last line.
    #[serde(default)]
    pub done: bool,
    /// Why generation stopped, on the last line.
    #[serde(borrow, default, deserialize_with = "borrow_opt_str", skip_serializing_if = "Option::is_none")]
    pub done_reason: Option<Cow<'a, str>>,
    /// Token context to continue from (deprecated by Ollama, still sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Vec<i64>>,
    /// Whole request, in nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_duration: Option<u64>,
    /// Model loading, in nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_duration: Option<u64>,
    /// Prompt tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_eval_count: Option<u32>,
    /// Prompt processing, in nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_eval_duration: Option<u64>,
    /// Generated tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_count: Option<u32>,
    /// Generation, in nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_duration: Option<u64>,
    /// A mid-stream failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `GET /api/tags` answer: the pulled models.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TagsResponse {
    /// The models.
    #[serde(default)]
    pub models: Vec<ModelEntry>,
}

/// One pulled model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// Tag, e.g. `gpt-oss:20b`.
    pub name: String,
    /// Same as `name` in current versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// RFC 3339 time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_at: Option<String>,
    /// Size on disk, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Content digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Format, family, size and quantisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<ModelDetails>,
}

/// Details of a pulled model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelDetails {
    /// Base model, when derived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_model: Option<String>,
    /// `gguf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Architecture family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// All families.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub families: Option<Vec<String>>,
    /// e.g. `20.9B`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_size: Option<String>,
    /// e.g. `MXFP4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization_level: Option<String>,
}

/// `GET /api/version` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionResponse {
    /// Server version.
    #[serde(default)]
    pub version: String,
}

/// Error body: `{"error": "…"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// What went wrong.
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_lines_parse_with_thinking_and_final_counts() {
        let line: ChatResponse<'_> = serde_json::from_str(
            r#"{"model":"gpt-oss:20b","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant","content":"","thinking":"pienso"},"done":false}"#,
        )
        .unwrap();
        assert!(matches!(line.message.as_ref().unwrap().thinking, Some(Cow::Borrowed("pienso"))));
        let last: ChatResponse<'_> = serde_json::from_str(
            r#"{"model":"m","created_at":"t","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":5,"load_duration":1,"prompt_eval_count":3,"prompt_eval_duration":2,"eval_count":4,"eval_duration":2}"#,
        )
        .unwrap();
        assert!(last.done);
        assert_eq!(last.done_reason.as_deref(), Some("stop"));
        assert_eq!((last.prompt_eval_count, last.eval_count), (Some(3), Some(4)));
    }

    #[test]
    fn generate_line_and_error_line() {
        let line: GenerateResponse<'_> =
            serde_json::from_str(r#"{"model":"m","created_at":"t","response":"Hola","done":false}"#).unwrap();
        assert!(matches!(line.response, Cow::Borrowed("Hola")));
        let line: GenerateResponse<'_> = serde_json::from_str(r#"{"error":"model crashed"}"#).unwrap();
        assert_eq!(line.error.as_deref(), Some("model crashed"));
    }

    #[test]
    fn requests_leave_out_unset_fields() {
        let request = GenerateRequest {
            model: "gpt-oss:20b".into(),
            prompt: "hola".into(),
            stream: Some(true),
            think: Some(serde_json::json!("high")),
            keep_alive: Some(serde_json::json!("5m")),
            options: Some(Options { num_ctx: Some(8192), ..Options::default() }),
            ..GenerateRequest::default()
        };
        let value = serde_json::to_value(&request).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"model":"gpt-oss:20b","prompt":"hola","stream":true,"think":"high","keep_alive":"5m","options":{"num_ctx":8192}})
        );
    }

    #[test]
    fn tags_list_parses() {
        let tags: TagsResponse = serde_json::from_str(
            r#"{"models":[{"name":"gpt-oss:20b","model":"gpt-oss:20b","size":13,"details":{"family":"gptoss","parameter_size":"20.9B"},"new":1}]}"#,
        )
        .unwrap();
        assert_eq!(tags.models[0].name, "gpt-oss:20b");
        assert_eq!(tags.models[0].details.as_ref().unwrap().parameter_size.as_deref(), Some("20.9B"));
    }
}
