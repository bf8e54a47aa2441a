//! The OpenAI chat completions protocol (`POST /v1/chat/completions`, `GET /v1/models`), as spoken
//! by OpenAI, vLLM, llama.cpp server, Ollama `/v1` and others.
//!
//! Requests and whole answers own their text; stream chunks ([`ChatCompletionChunk`]) borrow it from
//! the frame being decoded or encoded, since they are the hot path of every streamed answer.

use std::borrow::Cow;

use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::borrow_opt_str;

/// The data of the SSE frame that ends a stream.
pub const DONE: &[u8] = b"[DONE]";

/// `POST /v1/chat/completions` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionRequest {
    /// Model name.
    pub model: String,
    /// The conversation.
    pub messages: Vec<RequestMessage>,
    /// Stream the answer as SSE chunks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Streaming options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// Most tokens to generate (older name, accepted by every server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Most tokens to generate, reasoning included (newer name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling mass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    /// Sampling seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Presence penalty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
    /// Frequency penalty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
    /// Functions the model may call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// `"auto"`, `"none"`, `"required"` or a named function, passed through as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<serde_json::Value>,
    /// End-user identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Top-k sampling (non-standard; vLLM and llama.cpp accept it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// Repetition penalty (non-standard; vLLM and llama.cpp accept it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repetition_penalty: Option<f32>,
}

/// `stream_options`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamOptions {
    /// Send a usage chunk (empty `choices`) before `[DONE]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
}

/// `stop`: one string or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// A single stop string.
    One(String),
    /// Several stop strings.
    Many(Vec<String>),
}

impl Stop {
    /// The stop strings as a list.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(one) => vec![one],
            Self::Many(many) => many,
        }
    }
}

/// One message of a request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestMessage {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: String,
    /// Text, or an array of parts; absent on assistant messages that only call tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<MessageContent>,
    /// Author name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Calls made by an assistant message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// For `tool` messages: the call answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

/// Message content: a string or an array of typed parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Typed parts (text, images, …).
    Parts(Vec<ContentPart>),
}

impl MessageContent {
    /// The text of the content: the string, or the text parts joined with newlines.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Self::Text(text) => Cow::Borrowed(text),
            Self::Parts(parts) => {
                let mut texts = parts.iter().filter_map(|part| match part {
                    ContentPart::Text { text } => Some(text.as_str()),
                    _ => None,
                });
                match (texts.next(), texts.next()) {
                    (None, _) => Cow::Borrowed(""),
                    (Some(only), None) => Cow::Borrowed(only),
                    (Some(first), Some(second)) => {
                        let mut joined = format!("{first}\n{second}");
                        for text in texts {
                            joined.push('\n');
                            joined.push_str(text);
                        }
                        Cow::Owned(joined)
                    }
                }
            }
        }
    }
}

/// One part of an array content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image by URL or `data:` URI.
    ImageUrl {
        /// The image.
        image_url: ImageUrl,
    },
    /// Any part type this crate does not read (audio, files, …).
    #[serde(other)]
    Unsupported,
}

/// An image reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageUrl {
    /// URL or `data:` URI.
    pub url: String,
    /// `low`, `high` or `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A tool offered to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// Always `function`.
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    /// The function.
    pub function: FunctionDefinition,
}

/// A function offered to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionDefinition {
    /// Name.
    pub name: String,
    /// What it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<serde_json::Value>,
    /// Ask for strict schema adherence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// A complete tool call (requests and whole answers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Call id.
    pub id: String,
    /// Always `function`.
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    /// The call.
    pub function: FunctionCall,
}

/// Function name and arguments of a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// Function name.
    pub name: String,
    /// Arguments as JSON text.
    pub arguments: String,
}

fn function_type() -> String {
    "function".to_owned()
}

/// Token counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    #[serde(default)]
    pub prompt_tokens: u32,
    /// Generated tokens.
    #[serde(default)]
    pub completion_tokens: u32,
    /// Their sum.
    #[serde(default)]
    pub total_tokens: u32,
}

/// A whole answer (`object: "chat.completion"`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletion {
    /// Answer id (`chatcmpl-…`).
    #[serde(default)]
    pub id: String,
    /// `chat.completion`.
    #[serde(default)]
    pub object: String,
    /// Unix time in seconds.
    #[serde(default)]
    pub created: u64,
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// Answers (one unless `n` was set).
    #[serde(default)]
    pub choices: Vec<Choice>,
    /// Token counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// One answer of a [`ChatCompletion`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Position.
    #[serde(default)]
    pub index: u32,
    /// The answer.
    pub message: ResponseMessage,
    /// `stop`, `length`, `tool_calls`, `content_filter`.
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// The assistant message of a whole answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseMessage {
    /// `assistant`.
    #[serde(default)]
    pub role: String,
    /// The visible answer.
    #[serde(default)]
    pub content: Option<String>,
    /// Reasoning, as vLLM and DeepSeek name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Reasoning, as Ollama, llama.cpp and OpenRouter name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// Tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
}

/// One streamed chunk (`object: "chat.completion.chunk"`), borrowing its text.
///
/// Servers that fail mid-stream send a frame with only `error`; it is read into
/// [`ChatCompletionChunk::error`] so one parse serves both.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionChunk<'a> {
    /// Answer id, the same in every chunk.
    #[serde(borrow, default)]
    pub id: Cow<'a, str>,
    /// `chat.completion.chunk`.
    #[serde(borrow, default)]
    pub object: Cow<'a, str>,
    /// Unix time in seconds.
    #[serde(default)]
    pub created: u64,
    /// The model answering.
    #[serde(borrow, default)]
    pub model: Cow<'a, str>,
    /// The choices this chunk updates; empty in the usage chunk.
    #[serde(borrow, default)]
    pub choices: Choices<'a>,
    /// Token counts (the usage chunk, with `stream_options.include_usage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// A mid-stream failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorPayload>,
}

/// One choice of a chunk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChunkChoice<'a> {
    /// Position.
    #[serde(default)]
    pub index: u32,
    /// What this chunk adds.
    #[serde(borrow, default)]
    pub delta: Delta<'a>,
    /// Set on the last chunk of the choice; serialised as `null` before that, as OpenAI does.
    #[serde(borrow, default, deserialize_with = "borrow_opt_str")]
    pub finish_reason: Option<Cow<'a, str>>,
}

/// What a chunk adds to the answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta<'a> {
    /// `assistant`, on the first chunk only.
    #[serde(borrow, default, deserialize_with = "borrow_opt_str", skip_serializing_if = "Option::is_none")]
    pub role: Option<Cow<'a, str>>,
    /// A piece of the visible answer.
    #[serde(borrow, default, deserialize_with = "borrow_opt_str", skip_serializing_if = "Option::is_none")]
    pub content: Option<Cow<'a, str>>,
    /// A piece of reasoning, as vLLM and DeepSeek name it.
    #[serde(borrow, default, deserialize_with = "borrow_opt_str", skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<Cow<'a, str>>,
    /// A piece of reasoning, as Ollama, llama.cpp and OpenRouter name it.
    #[serde(borrow, default, deserialize_with = "borrow_opt_str", skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Cow<'a, str>>,
    /// Pieces of tool calls, to be accumulated by `index`.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta<'a>>>,
}

/// A piece of a tool call: the first carries `id` and `function.name`, the rest more `arguments`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCallDelta<'a> {
    /// Which call of the answer this piece belongs to.
    #[serde(default)]
    pub index: u32,
    /// Call id (first piece).
    #[serde(borrow, default, deserialize_with = "borrow_opt_str", skip_serializing_if = "Option::is_none")]
    pub id: Option<Cow<'a, str>>,
    /// `function` (first piece).
    #[serde(
        rename = "type",
        borrow,
        default,
        deserialize_with = "borrow_opt_str",
        skip_serializing_if = "Option::is_none"
    )]
    pub kind: Option<Cow<'a, str>>,
    /// Name and a piece of the arguments.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCallDelta<'a>>,
}

/// Name (first piece) and a piece of the arguments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallDelta<'a> {
    /// Function name.
    #[serde(borrow, default, deserialize_with = "borrow_opt_str", skip_serializing_if = "Option::is_none")]
    pub name: Option<Cow<'a, str>>,
    /// A piece of the JSON arguments.
    #[serde(borrow, default, deserialize_with = "borrow_opt_str", skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Cow<'a, str>>,
}

/// The `choices` array of a chunk.
///
/// A streamed chunk carries one choice; it is kept inline so decoding or encoding a chunk does
/// not allocate a vector. More choices (`n > 1`) spill into a vector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Choices<'a> {
    first: Option<ChunkChoice<'a>>,
    rest: Vec<ChunkChoice<'a>>,
}

impl<'a> Choices<'a> {
    /// No choices (the usage chunk).
    pub fn new() -> Self {
        Self::default()
    }

    /// A single choice.
    pub fn one(choice: ChunkChoice<'a>) -> Self {
        Self { first: Some(choice), rest: Vec::new() }
    }

    /// Appends a choice.
    pub fn push(&mut self, choice: ChunkChoice<'a>) {
        if self.first.is_none() {
            self.first = Some(choice);
        } else {
            self.rest.push(choice);
        }
    }

    /// How many choices.
    pub fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// The choices in order.
    pub fn iter(&self) -> impl Iterator<Item = &ChunkChoice<'a>> {
        self.first.iter().chain(self.rest.iter())
    }

    /// The choices in order, by value.
    pub fn into_vec(self) -> Vec<ChunkChoice<'a>> {
        self.first.into_iter().chain(self.rest).collect()
    }
}

impl<'a> From<Vec<ChunkChoice<'a>>> for Choices<'a> {
    fn from(choices: Vec<ChunkChoice<'a>>) -> Self {
        let mut all = Self::new();
        for choice in choices {
            all.push(choice);
        }
        all
    }
}

impl Serialize for Choices<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for choice in self.iter() {
            seq.serialize_element(choice)?;
        }
        seq.end()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Choices<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ChoicesVisitor<'a>(std::marker::PhantomData<Choices<'a>>);
        impl<'de: 'a, 'a> Visitor<'de> for ChoicesVisitor<'a> {
            type Value = Choices<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of choices")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut choices = Choices::new();
                while let Some(choice) = seq.next_element::<ChunkChoice<'a>>()? {
                    choices.push(choice);
                }
                Ok(choices)
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(Choices::new()) // `"choices": null`
            }
        }
        deserializer.deserialize_any(ChoicesVisitor(std::marker::PhantomData))
    }
}

/// `GET /v1/models` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelList {
    /// `list`.
    #[serde(default)]
    pub object: String,
    /// The models.
    #[serde(default)]
    pub data: Vec<Model>,
}

/// One model of a [`ModelList`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Model name, as requests must give it.
    pub id: String,
    /// `model`.
    #[serde(default)]
    pub object: String,
    /// Unix time in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<u64>,
    /// Owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owned_by: Option<String>,
    /// Longest context the server accepts (vLLM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_model_len: Option<u32>,
    /// Server-specific details (llama.cpp puts `n_ctx_train`, `n_params`, … here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
}

/// An error answer: `{"error": {...}}`, as a response body or a mid-stream frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorPayload,
}

/// The `error` member: an object as OpenAI sends it, or a bare string as some servers do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ErrorPayload {
    /// `{"message", "type", "code", "param"}`.
    Detail(ErrorDetail),
    /// A bare message.
    Message(String),
}

impl ErrorPayload {
    /// The human-readable message.
    pub fn message(&self) -> &str {
        match self {
            Self::Detail(detail) => &detail.message,
            Self::Message(message) => message,
        }
    }
}

/// An error object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// What went wrong.
    #[serde(default)]
    pub message: String,
    /// Error class (`invalid_request_error`, `server_error`, …).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Machine code (a string at OpenAI, a number at llama.cpp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<serde_json::Value>,
    /// The offending parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_chunk_is_read_without_copying_text() {
        let frame = br#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-oss:20b","choices":[{"index":0,"delta":{"role":"assistant","content":"Hola"},"finish_reason":null}]}"#;
        let chunk: ChatCompletionChunk<'_> = serde_json::from_slice(frame).unwrap();
        let choice = chunk.choices.iter().next().unwrap();
        assert!(matches!(choice.delta.content, Some(Cow::Borrowed("Hola"))));
        assert!(matches!(chunk.model, Cow::Borrowed("gpt-oss:20b")));
        assert_eq!(choice.finish_reason, None);
        assert_eq!(chunk.choices.len(), 1);
    }

    #[test]
    fn chunk_round_trips_with_null_finish_reason_and_no_absent_fields() {
        let chunk = ChatCompletionChunk {
            id: "chatcmpl-1".into(),
            object: "chat.completion.chunk".into(),
            created: 7,
            model: "m".into(),
            choices: Choices::one(ChunkChoice {
                index: 0,
                delta: Delta { content: Some("hola".into()), ..Delta::default() },
                finish_reason: None,
            }),
            usage: None,
            error: None,
        };
        let text = serde_json::to_string(&chunk).unwrap();
        assert_eq!(
            text,
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"content":"hola"},"finish_reason":null}]}"#
        );
        let back: ChatCompletionChunk<'_> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, chunk);
    }

    #[test]
    fn usage_chunk_and_error_frame() {
        let chunk: ChatCompletionChunk<'_> = serde_json::from_str(
            r#"{"id":"x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8},"extra":1}"#,
        )
        .unwrap();
        assert!(chunk.choices.is_empty());
        assert_eq!(chunk.usage.unwrap().completion_tokens, 5);
        let chunk: ChatCompletionChunk<'_> =
            serde_json::from_str(r#"{"error":{"message":"boom","type":"server_error"}}"#).unwrap();
        assert_eq!(chunk.error.unwrap().message(), "boom");
        let chunk: ChatCompletionChunk<'_> = serde_json::from_str(r#"{"error":"plain"}"#).unwrap();
        assert_eq!(chunk.error.unwrap().message(), "plain");
    }

    #[test]
    fn tool_call_pieces_parse() {
        let chunk: ChatCompletionChunk<'_> = serde_json::from_str(
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"clima","arguments":"{\"ciu"}}]}}]}"#,
        )
        .unwrap();
        let calls = chunk.choices.iter().next().unwrap().delta.tool_calls.clone().unwrap();
        assert_eq!(calls[0].id.as_deref(), Some("call_1"));
        assert_eq!(calls[0].function.as_ref().unwrap().arguments.as_deref(), Some("{\"ciu"));
    }

    #[test]
    fn request_reads_every_field_shape() {
        let request: ChatCompletionRequest = serde_json::from_str(
            r#"{"model":"m","messages":[{"role":"system","content":"s"},
                {"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"data:x"}},{"type":"input_audio","input_audio":{}},{"type":"text","text":"b"}]}],
                "stream":true,"stream_options":{"include_usage":true},"stop":"Usuario:","top_k":40,"repetition_penalty":1.1,
                "tool_choice":"auto","unknown_field":true}"#,
        )
        .unwrap();
        assert_eq!(request.messages[1].content.as_ref().unwrap().text(), "a\nb");
        assert_eq!(request.stop.clone().unwrap().into_vec(), vec!["Usuario:".to_owned()]);
        assert_eq!(request.top_k, Some(40));
        let text = serde_json::to_string(&request).unwrap();
        assert!(!text.contains("max_tokens"), "None fields are left out: {text}");
        let request: ChatCompletionRequest =
            serde_json::from_str(r#"{"model":"m","messages":[],"stop":["a","b"]}"#).unwrap();
        assert_eq!(request.stop.unwrap().into_vec().len(), 2);
    }

    #[test]
    fn multi_choice_chunks_keep_order() {
        let text = r#"{"choices":[{"index":0,"delta":{"content":"a"}},{"index":1,"delta":{"content":"b"}}]}"#;
        let chunk: ChatCompletionChunk<'_> = serde_json::from_str(text).unwrap();
        let indexes: Vec<u32> = chunk.choices.iter().map(|c| c.index).collect();
        assert_eq!(indexes, vec![0, 1]);
        let text = serde_json::to_string(&chunk).unwrap();
        let again: ChatCompletionChunk<'_> = serde_json::from_str(&text).unwrap();
        assert_eq!(again.choices.into_vec().len(), 2);
    }
}
