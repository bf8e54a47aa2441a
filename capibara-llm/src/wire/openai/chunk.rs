//! Stream chunks (`chat.completion.chunk`), borrowing their text from the frame.

use std::borrow::Cow;

use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{ErrorPayload, Usage};
use crate::wire::borrow_opt_str;

/// The data of the SSE frame that ends a stream.
pub const DONE: &[u8] = b"[DONE]";

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
