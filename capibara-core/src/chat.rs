//! Chat domain types: messages, requests with sampling options, typed stream events and answers.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions that frame the conversation.
    System,
    /// The person talking to the assistant.
    User,
    /// The model.
    Assistant,
    /// The result of a tool call, fed back to the model.
    Tool,
}

impl Role {
    /// The lowercase wire name (`system`, `user`, `assistant`, `tool`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
            Self::Tool => "tool",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self> {
        match value {
            "system" | "developer" => Ok(Self::System),
            "user" => Ok(Self::User),
            "assistant" => Ok(Self::Assistant),
            "tool" => Ok(Self::Tool),
            other => Err(Error::invalid(format!("unknown message role `{other}`"))),
        }
    }
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Function name.
    pub name: String,
    /// What the function does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    #[serde(default)]
    pub parameters: serde_json::Value,
}

/// A call the model asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Identifier to answer the call with a [`Role::Tool`] message.
    pub id: String,
    /// Function name.
    pub name: String,
    /// Arguments as JSON text, exactly as the model produced them.
    pub arguments: String,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Author.
    pub role: Role,
    /// The visible text.
    pub content: String,
    /// The model's reasoning, kept apart from the answer and never sent back as content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// Calls requested by an assistant message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For [`Role::Tool`] messages: the call this answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A message with the given role and content.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: content.into(), reasoning: None, tool_calls: Vec::new(), tool_call_id: None }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }
}

/// How to sample the answer. Unset fields use the backend's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingOptions {
    /// Softmax temperature, 0 – 2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling mass, (0, 1].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Keep only the k most likely tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// Most tokens to generate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Strings that end generation when produced.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// Seed for reproducible sampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Penalty for repeating tokens (llama.cpp / Ollama style, 1.0 = off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeat_penalty: Option<f32>,
    /// OpenAI presence penalty, -2 – 2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
    /// OpenAI frequency penalty, -2 – 2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
}

/// Upper bound on `max_tokens` accepted from callers.
pub const MAX_TOKENS_LIMIT: u32 = 1 << 20;
/// Upper bound on the number of stop strings (OpenAI allows 4; llama.cpp more).
pub const MAX_STOP_STRINGS: usize = 16;

impl SamplingOptions {
    /// Checks every set option is in its valid range.
    pub fn validate(&self) -> Result<()> {
        fn range(name: &str, value: Option<f32>, lo: f32, hi: f32) -> Result<()> {
            match value {
                Some(v) if !(lo..=hi).contains(&v) || v.is_nan() => {
                    Err(Error::invalid(format!("{name} must be between {lo} and {hi}, got {v}")))
                }
                _ => Ok(()),
            }
        }
        range("temperature", self.temperature, 0.0, 2.0)?;
        range("top_p", self.top_p, 0.0, 1.0)?;
        range("repeat_penalty", self.repeat_penalty, 0.0, 10.0)?;
        range("presence_penalty", self.presence_penalty, -2.0, 2.0)?;
        range("frequency_penalty", self.frequency_penalty, -2.0, 2.0)?;
        if self.top_p == Some(0.0) {
            return Err(Error::invalid("top_p must be greater than 0"));
        }
        match self.max_tokens {
            Some(0) => return Err(Error::invalid("max_tokens must be at least 1")),
            Some(n) if n > MAX_TOKENS_LIMIT => {
                return Err(Error::invalid(format!("max_tokens must be at most {MAX_TOKENS_LIMIT}")));
            }
            _ => {}
        }
        if self.stop.len() > MAX_STOP_STRINGS {
            return Err(Error::invalid(format!("at most {MAX_STOP_STRINGS} stop strings are allowed")));
        }
        if self.stop.iter().any(String::is_empty) {
            return Err(Error::invalid("stop strings must not be empty"));
        }
        Ok(())
    }
}

/// A request for one model answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// Model to use; `None` means the backend's configured model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The conversation so far, oldest first.
    pub messages: Vec<Message>,
    /// Sampling options.
    #[serde(default)]
    pub options: SamplingOptions,
    /// Functions the model may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolSpec>,
}

impl ChatRequest {
    /// A request with the given messages and default options.
    pub fn new(messages: Vec<Message>) -> Self {
        Self { messages, ..Self::default() }
    }

    /// Checks the request is well formed: some messages, not all empty, options in range.
    pub fn validate(&self) -> Result<()> {
        if self.messages.is_empty() {
            return Err(Error::invalid("messages must not be empty"));
        }
        if self.messages.iter().all(|m| m.content.trim().is_empty() && m.tool_calls.is_empty()) {
            return Err(Error::invalid("every message is empty"));
        }
        if let Some(model) = &self.model
            && model.trim().is_empty()
        {
            return Err(Error::invalid("model must not be empty when given"));
        }
        self.options.validate()
    }
}

/// Why generation stopped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model finished, or produced a stop string.
    Stop,
    /// `max_tokens` (or the context window) was reached.
    Length,
    /// The model asked for tool calls.
    ToolCalls,
    /// The upstream filtered the answer.
    ContentFilter,
    /// The caller went away before the answer was complete.
    Cancelled,
    /// Something else the upstream reported.
    Other(String),
}

impl FinishReason {
    /// Maps the names used by OpenAI, Ollama and llama.cpp to a reason.
    pub fn from_wire(value: &str) -> Self {
        match value {
            "stop" | "eos" | "word" | "end_turn" | "stop_sequence" => Self::Stop,
            "length" | "limit" | "max_tokens" => Self::Length,
            "tool_calls" | "function_call" | "tool_use" => Self::ToolCalls,
            "content_filter" => Self::ContentFilter,
            "cancelled" => Self::Cancelled,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The OpenAI wire name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::ToolCalls => "tool_calls",
            Self::ContentFilter => "content_filter",
            Self::Cancelled => "cancelled",
            Self::Other(other) => other,
        }
    }
}

/// Token accounting for one answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
}

impl Usage {
    /// Prompt plus completion tokens.
    pub fn total_tokens(&self) -> u32 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

/// One typed event of a streamed answer.
///
/// A well-formed stream carries any number of deltas, tool calls and usage events, then exactly
/// one [`StreamEvent::Done`] as its last item — or ends early with an error item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// A piece of the visible answer.
    Content {
        /// The text of this piece.
        delta: String,
    },
    /// A piece of the model's reasoning (never part of the answer).
    Reasoning {
        /// The text of this piece.
        delta: String,
    },
    /// A complete tool call.
    ToolCall {
        /// The call.
        call: ToolCall,
    },
    /// Token accounting, usually just before [`StreamEvent::Done`].
    Usage {
        /// The counts.
        usage: Usage,
    },
    /// The answer is complete.
    Done {
        /// Why generation stopped.
        finish_reason: FinishReason,
    },
}

impl StreamEvent {
    /// A content delta.
    pub fn content(delta: impl Into<String>) -> Self {
        Self::Content { delta: delta.into() }
    }

    /// A reasoning delta.
    pub fn reasoning(delta: impl Into<String>) -> Self {
        Self::Reasoning { delta: delta.into() }
    }

    /// The final event.
    pub fn done(finish_reason: FinishReason) -> Self {
        Self::Done { finish_reason }
    }
}

/// A whole answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The model that answered.
    pub model: String,
    /// The backend that answered (its id).
    pub backend: String,
    /// The visible answer.
    pub content: String,
    /// The model's reasoning, if it produced any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    /// Tool calls the model asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Token accounting, when the backend reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Why generation stopped.
    pub finish_reason: FinishReason,
}

/// Folds stream events into an answer; used by [`crate::llm::ChatStream::collect_response`] and
/// by anything that records what was streamed.
#[derive(Debug, Clone, Default)]
pub struct AnswerBuilder {
    /// Visible text so far.
    pub content: String,
    /// Reasoning text so far.
    pub reasoning: String,
    /// Tool calls so far.
    pub tool_calls: Vec<ToolCall>,
    /// Last usage reported.
    pub usage: Option<Usage>,
    /// Set once [`StreamEvent::Done`] arrives.
    pub finish_reason: Option<FinishReason>,
}

impl AnswerBuilder {
    /// Adds one event.
    pub fn push(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::Content { delta } => self.content.push_str(delta),
            StreamEvent::Reasoning { delta } => self.reasoning.push_str(delta),
            StreamEvent::ToolCall { call } => self.tool_calls.push(call.clone()),
            StreamEvent::Usage { usage } => self.usage = Some(*usage),
            StreamEvent::Done { finish_reason } => self.finish_reason = Some(finish_reason.clone()),
        }
    }

    /// Reasoning text, `None` when the model produced none.
    pub fn reasoning(&self) -> Option<String> {
        (!self.reasoning.is_empty()).then(|| self.reasoning.clone())
    }

    /// The finished answer; an error if the stream never said it was done.
    pub fn finish(self, model: String, backend: String) -> Result<ChatResponse> {
        let reasoning = (!self.reasoning.is_empty()).then_some(self.reasoning);
        let finish_reason = self
            .finish_reason
            .ok_or_else(|| Error::upstream(502, "the answer stream ended without a final event"))?;
        Ok(ChatResponse {
            model,
            backend,
            content: self.content,
            reasoning,
            tool_calls: self.tool_calls,
            usage: self.usage,
            finish_reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_whitespace_requests_are_rejected() {
        assert!(ChatRequest::new(vec![]).validate().is_err());
        assert!(ChatRequest::new(vec![Message::user("   ")]).validate().is_err());
        assert!(ChatRequest::new(vec![Message::user("hola")]).validate().is_ok());
    }

    #[test]
    fn out_of_range_options_are_rejected() {
        let mut request = ChatRequest::new(vec![Message::user("hola")]);
        request.options.temperature = Some(3.0);
        assert!(request.validate().is_err());
        request.options.temperature = Some(f32::NAN);
        assert!(request.validate().is_err());
        request.options.temperature = Some(0.7);
        request.options.max_tokens = Some(0);
        assert!(request.validate().is_err());
        request.options.max_tokens = Some(500);
        request.options.stop = vec![String::new()];
        assert!(request.validate().is_err());
        request.options.stop = vec!["Usuario:".into()];
        assert!(request.validate().is_ok());
    }

    #[test]
    fn finish_reasons_from_every_wire() {
        assert_eq!(FinishReason::from_wire("eos"), FinishReason::Stop);
        assert_eq!(FinishReason::from_wire("limit"), FinishReason::Length);
        assert_eq!(FinishReason::from_wire("tool_calls"), FinishReason::ToolCalls);
        assert_eq!(FinishReason::from_wire("weird"), FinishReason::Other("weird".into()));
    }

    #[test]
    fn builder_keeps_reasoning_apart() {
        let mut builder = AnswerBuilder::default();
        builder.push(&StreamEvent::reasoning("pienso"));
        builder.push(&StreamEvent::content("Hola"));
        builder.push(&StreamEvent::content(" mundo"));
        builder.push(&StreamEvent::done(FinishReason::Stop));
        let answer = builder.finish("m".into(), "b".into()).unwrap();
        assert_eq!(answer.content, "Hola mundo");
        assert_eq!(answer.reasoning.as_deref(), Some("pienso"));
    }

    #[test]
    fn builder_without_done_is_an_error() {
        let mut builder = AnswerBuilder::default();
        builder.push(&StreamEvent::content("Hola"));
        assert_eq!(builder.finish("m".into(), "b".into()).unwrap_err().code(), "upstream_error");
    }
}
