//! The OpenAI protocol (`POST /v1/chat/completions`, `POST /v1/embeddings`, `GET /v1/models`), as spoken
//! by OpenAI, vLLM, llama.cpp server, Ollama `/v1` and others.
//!
//! Requests and whole answers own their text; stream chunks ([`ChatCompletionChunk`]) borrow it from
//! the frame being decoded or encoded, since they are the hot path of every streamed answer.
//!
//! `None` fields are left out when writing, except `finish_reason` (chunks and answers) and an
//! answer message's `content`, which OpenAI writes as `null` and strict clients expect.

mod chunk;
mod embeddings;
mod request;
mod response;

pub use chunk::{ChatCompletionChunk, Choices, ChunkChoice, DONE, Delta, FunctionCallDelta, ToolCallDelta};
pub use embeddings::{
    EmbeddingData, EmbeddingInput, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage, EmbeddingVector,
    EncodingFormat,
};
pub use request::{
    ChatCompletionRequest, ContentPart, FunctionCall, FunctionDefinition, ImageUrl, MessageContent,
    RequestMessage, Stop, StreamOptions, Tool, ToolCall,
};
pub use response::{
    ChatCompletion, Choice, ErrorBody, ErrorDetail, ErrorPayload, Model, ModelList, ResponseMessage, Usage,
};
