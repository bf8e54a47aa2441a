//! What callers pass: messages, chat options, search and answer options, documents. Each type
//! is read from a JavaScript object (camelCase keys; an unknown key is an error, so a typo is not
//! silently ignored) and handed to the library as the library's own type, which checks the
//! values. The `#[napi(object)]` attributes only describe these objects in `index.d.ts`.

use capibara_core::chat::{Role, ToolCall};
use capibara_core::vector::{Filter, Metadata};
use capibara_server::operations;
use capibara_server::rag::{self, RagMode};
use napi_derive::napi;
use serde::Deserialize;
use serde_json::Value;

/// One message of a conversation.
#[napi(object, object_to_js = false, object_from_js = false)]
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Message {
    /// Who wrote it.
    #[napi(ts_type = "'system' | 'user' | 'assistant' | 'tool'")]
    pub role: Role,
    /// The visible text.
    pub content: String,
    /// The model's reasoning of an earlier answer (never sent back as content).
    pub reasoning: Option<String>,
    /// Calls an assistant message asked for.
    #[napi(ts_type = "Array<ToolCall>")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// For `tool` messages: the call this answers.
    pub tool_call_id: Option<String>,
}

impl From<Message> for capibara_core::chat::Message {
    fn from(message: Message) -> Self {
        Self {
            role: message.role,
            content: message.content,
            reasoning: message.reasoning,
            tool_calls: message.tool_calls.unwrap_or_default(),
            tool_call_id: message.tool_call_id,
        }
    }
}

/// How to answer a chat: the model and the sampling options (unset = the backend's defaults).
#[napi(object, object_to_js = false, object_from_js = false)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChatOptions {
    /// Model to ask; the configured one when unset.
    pub model: Option<String>,
    /// Softmax temperature, 0 – 2.
    pub temperature: Option<f32>,
    /// Nucleus sampling mass, (0, 1].
    pub top_p: Option<f32>,
    /// Keep only the k most likely tokens.
    pub top_k: Option<u32>,
    /// Most tokens to generate.
    pub max_tokens: Option<u32>,
    /// Strings that end generation when produced.
    pub stop: Option<Vec<String>>,
    /// Seed for reproducible sampling.
    #[napi(ts_type = "number")]
    pub seed: Option<u64>,
    /// Penalty for repeating tokens (1.0 = off).
    pub repeat_penalty: Option<f32>,
    /// Presence penalty, -2 – 2.
    pub presence_penalty: Option<f32>,
    /// Frequency penalty, -2 – 2.
    pub frequency_penalty: Option<f32>,
}

impl From<ChatOptions> for operations::ChatOptions {
    fn from(options: ChatOptions) -> Self {
        Self {
            model: options.model,
            temperature: options.temperature,
            top_p: options.top_p,
            top_k: options.top_k,
            max_tokens: options.max_tokens,
            stop: options.stop.unwrap_or_default(),
            seed: options.seed,
            repeat_penalty: options.repeat_penalty,
            presence_penalty: options.presence_penalty,
            frequency_penalty: options.frequency_penalty,
        }
    }
}

/// How to search the retrieval collection.
#[napi(object, object_to_js = false, object_from_js = false)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchOptions {
    /// Results wanted; 10 for lexical, dense and hybrid when unset, the configured depth for
    /// mini, full and guided.
    pub k: Option<u32>,
    /// Metadata every result must match.
    #[napi(ts_type = "Filter")]
    pub filter: Option<Filter>,
    /// How to search (`guided` by default).
    #[napi(ts_type = "'mini' | 'full' | 'guided' | 'lexical' | 'dense' | 'hybrid'")]
    pub mode: Option<RagMode>,
}

impl From<SearchOptions> for rag::SearchOptions {
    fn from(options: SearchOptions) -> Self {
        Self {
            mode: options.mode.unwrap_or_default(),
            k: options.k.map(|k| k as usize),
            filter: options.filter,
        }
    }
}

/// How to answer a question from retrieved sources.
#[napi(object, object_to_js = false, object_from_js = false)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AskOptions {
    /// How to retrieve (`guided` by default).
    #[napi(ts_type = "'mini' | 'full' | 'guided' | 'lexical' | 'dense' | 'hybrid'")]
    pub mode: Option<RagMode>,
    /// Metadata every source must match.
    #[napi(ts_type = "Filter")]
    pub filter: Option<Filter>,
    /// Model to ask; the configured one when unset.
    pub model: Option<String>,
    /// Most tokens to generate.
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Conversation to continue (a UUID); a new one when unset.
    pub conversation_id: Option<String>,
    /// Who asks; anonymous when unset.
    pub email: Option<String>,
    /// Asking twice with the same key stores the turn once.
    pub idempotency_key: Option<String>,
}

impl From<AskOptions> for rag::AskOptions {
    fn from(options: AskOptions) -> Self {
        Self {
            mode: options.mode.unwrap_or_default(),
            filter: options.filter,
            model: options.model,
            max_tokens: options.max_tokens,
            temperature: options.temperature,
            conversation_id: options.conversation_id,
            email: options.email,
            idempotency_key: options.idempotency_key,
        }
    }
}

/// A document handed over in memory.
#[napi(object, object_to_js = false, object_from_js = false)]
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Document {
    /// Stable id; derived from `source` and the text when missing. A new text under the same id
    /// replaces the earlier version.
    pub id: Option<String>,
    /// The text.
    pub text: String,
    /// A title, shown with its chunks.
    pub title: Option<String>,
    /// Where it came from (`api` when missing).
    pub source: Option<String>,
    /// Fields searches can filter on (kept as given).
    #[napi(ts_type = "Record<string, unknown>")]
    pub metadata: Option<Metadata>,
}

impl From<Document> for rag::DocumentInput {
    fn from(document: Document) -> Self {
        Self {
            id: document.id,
            text: document.text,
            title: document.title,
            source: document.source,
            metadata: document.metadata.unwrap_or_default(),
        }
    }
}

/// A metadata filter: an object with exactly one of these keys. Field names are top-level
/// metadata keys; `eq` and `in` compare strings, numbers and booleans; `range` bounds are
/// inclusive.
///
/// ```ts
/// { and: [{ eq: { field: 'lang', value: 'es' } }, { range: { field: 'year', gte: 2020 } }] }
/// ```
#[napi(object, object_to_js = false, object_from_js = false, js_name = "Filter")]
#[derive(Debug, Clone)]
pub struct FilterShape {
    /// `field === value`.
    #[napi(ts_type = "{ field: string; value: string | number | boolean }")]
    pub eq: Option<Value>,
    /// `field` is one of `values`.
    #[napi(js_name = "in", ts_type = "{ field: string; values: Array<string | number | boolean> }")]
    pub one_of: Option<Value>,
    /// `field` is a number within the bounds.
    #[napi(ts_type = "{ field: string; gte?: number; lte?: number }")]
    pub range: Option<Value>,
    /// Every filter matches.
    #[napi(ts_type = "Array<Filter>")]
    pub and: Option<Value>,
    /// Any filter matches.
    #[napi(ts_type = "Array<Filter>")]
    pub or: Option<Value>,
    /// The filter does not match.
    #[napi(ts_type = "Filter")]
    pub not: Option<Value>,
}
