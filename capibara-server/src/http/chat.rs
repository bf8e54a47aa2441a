//! The Capibara6 chat contract (port 5001 of the original): `POST /api/chat` and `POST /api/chat/stream`.
//!
//! `POST /api/chat` is shared with Ollama's API: a JSON body with a `messages` array is an Ollama chat
//! (see [`super::ollama`]); anything else (a `message` field, or a multipart form) is a Capibara6 chat.

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use capibara_core::Error;
use capibara_core::chat::{StreamEvent, Usage};
use capibara_core::turn::{TurnEvent, TurnSummary};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::chat_input::{ChatCall, form_from_json, form_from_multipart};
use super::error::ApiError;
use super::{ollama, sse};
use crate::app::Capibara;
use crate::rag::{RagContext, RetrievalInfo, Source};

/// Response header naming the conversation of a streamed answer before its first frame.
pub(crate) static CONVERSATION_ID: axum::http::HeaderName =
    axum::http::HeaderName::from_static("x-conversation-id");

/// `POST /api/chat`: Capibara6 (JSON or multipart) or Ollama, told apart by the body.
pub(crate) async fn chat_or_ollama(State(app): State<Capibara>, request: Request) -> Response {
    if is_multipart(request.headers()) {
        return match read_multipart(&app, request).await {
            Ok(call) => chat(&app, call).await.into_response(),
            Err(error) => error.into_response(),
        };
    }
    let headers = request.headers().clone();
    let body = match read_json_body(&app, request).await {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    if is_ollama_chat(&body) {
        return ollama::chat(app, &body).await;
    }
    match form_from_json(&body).and_then(|form| form.into_call(Vec::new(), &headers)) {
        Ok(call) => chat(&app, call).await.into_response(),
        Err(error) => error.into_response(),
    }
}

/// `POST /api/chat/stream`: the answer as server-sent events
/// `data: {"content","done":false}` … `data: {"content":"","done":true,"full_response",…}`,
/// or `data: {"error","done":true}` when the answer breaks off.
pub(crate) async fn chat_stream(State(app): State<Capibara>, request: Request) -> Response {
    let call = if is_multipart(request.headers()) {
        read_multipart(&app, request).await
    } else {
        let headers = request.headers().clone();
        match read_json_body(&app, request).await {
            Ok(body) => form_from_json(&body).and_then(|form| form.into_call(Vec::new(), &headers)),
            Err(error) => Err(error),
        }
    };
    match call {
        Ok(call) => stream(&app, call).await.unwrap_or_else(IntoResponse::into_response),
        Err(error) => error.into_response(),
    }
}

pub(crate) fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// Reads a JSON body within the JSON size limit, insisting on a JSON content type.
pub(crate) async fn read_json_body(app: &Capibara, request: Request) -> Result<bytes::Bytes, ApiError> {
    read_json_body_within(request, app.config().server.max_json_bytes).await
}

/// Reads a JSON body of at most `limit` bytes, insisting on a JSON content type.
pub(crate) async fn read_json_body_within(request: Request, limit: usize) -> Result<bytes::Bytes, ApiError> {
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .is_some_and(|m| m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON));
    if !is_json {
        return Err(ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected `Content-Type: application/json` (or multipart/form-data with files)",
        ));
    }
    axum::body::to_bytes(request.into_body(), limit).await.map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("request body is larger than the {limit}-byte limit"),
        )
    })
}

async fn read_multipart(app: &Capibara, request: Request) -> Result<ChatCall, ApiError> {
    let headers = request.headers().clone();
    let multipart = Multipart::from_request(request, &())
        .await
        .map_err(|rejection| ApiError::new(rejection.status(), "invalid_input", rejection.body_text()))?;
    let (form, attachments) =
        form_from_multipart(multipart, app.uploads(), app.config().server.max_json_bytes).await?;
    match form.into_call(attachments.clone(), &headers) {
        Ok(call) => Ok(call),
        Err(error) => {
            app.uploads().discard(&attachments).await;
            Err(error)
        }
    }
}

/// Whether a JSON body is an Ollama chat (`messages` array) rather than a Capibara6 one.
fn is_ollama_chat(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        messages: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Probe>(body).is_ok_and(|probe| probe.messages.is_some())
}

/// A stored upload as the original reported it.
#[derive(Debug, Serialize)]
struct FileInfo {
    name: String,
    size: u64,
    path: String,
}

/// The `/api/chat` answer: the original fields plus the conversation it belongs to.
#[derive(Debug, Serialize)]
struct ChatAnswer {
    response: String,
    timestamp: String,
    model: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    files: Vec<FileInfo>,
    conversation_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_id: Option<Uuid>,
    finish_reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning: Option<String>,
    latency_ms: u64,
    /// With `use_rag`: the sources the model was given, numbered as it may cite them.
    #[serde(skip_serializing_if = "Option::is_none")]
    sources: Option<Vec<Source>>,
    /// With `use_rag`: how retrieval went.
    #[serde(skip_serializing_if = "Option::is_none")]
    retrieval: Option<RetrievalInfo>,
}

/// Retrieves for a `use_rag` call and gives the sources to its turn; discards the call's
/// uploads when retrieval fails.
async fn with_context(app: &Capibara, call: &mut ChatCall) -> Result<Option<RagContext>, ApiError> {
    let Some(rag) = &call.rag else { return Ok(None) };
    match RagContext::retrieve(app, &call.input.message, rag).await {
        Ok(context) => {
            call.input.sources = context.sources.clone();
            Ok(Some(context))
        }
        Err(error) => {
            app.uploads().discard(&call.input.attachments).await;
            Err(error.into())
        }
    }
}

async fn chat(app: &Capibara, mut call: ChatCall) -> Result<Json<ChatAnswer>, ApiError> {
    let context = with_context(app, &mut call).await?;
    let files: Vec<FileInfo> = call
        .input
        .attachments
        .iter()
        .map(|a| FileInfo {
            name: a.attachment.original_name.clone(),
            size: a.attachment.size_bytes,
            path: a.attachment.stored_path.clone(),
        })
        .collect();
    let attachments = call.input.attachments.clone();
    let turns = match app.turns() {
        Ok(turns) => turns,
        Err(error) => {
            app.uploads().discard(&attachments).await;
            return Err(error.into());
        }
    };
    let timeout = app.config().server.request_timeout;
    let mut sources_used = 0;
    let summary = match turns.stream(call.input).await {
        Ok(stream) => {
            sources_used = stream.sources_used;
            tokio::time::timeout(timeout, stream.finish())
                .await
                .unwrap_or_else(|_| Err(Error::Timeout(format!("the answer took longer than {timeout:?}"))))
        }
        Err(error) => {
            app.uploads().discard(&attachments).await;
            Err(error)
        }
    }?;
    Ok(Json(ChatAnswer {
        response: summary.content,
        timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        model: summary.model,
        files,
        conversation_id: summary.conversation_id,
        message_id: summary.message_id,
        finish_reason: summary.finish_reason.as_str().to_owned(),
        usage: summary.usage,
        reasoning: call.include_reasoning.then_some(summary.reasoning).flatten(),
        latency_ms: summary.latency_ms,
        sources: context.as_ref().map(|c| c.used(sources_used)),
        retrieval: context.map(|c| c.retrieval),
    }))
}

#[derive(Serialize)]
struct DeltaFrame<'a> {
    content: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning: Option<&'a str>,
    done: bool,
}

#[derive(Serialize)]
struct DoneFrame<'a> {
    content: &'a str,
    done: bool,
    full_response: &'a str,
    conversation_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_id: Option<Uuid>,
    model: &'a str,
    finish_reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sources: Option<&'a [Source]>,
}

#[derive(Serialize)]
struct ErrorFrame<'a> {
    error: &'a str,
    code: &'a str,
    done: bool,
    conversation_id: Uuid,
}

async fn stream(app: &Capibara, mut call: ChatCall) -> Result<Response, ApiError> {
    let context = with_context(app, &mut call).await?;
    let attachments = call.input.attachments.clone();
    let started = match app.turns() {
        Ok(turns) => turns.stream(call.input).await,
        Err(error) => Err(error),
    };
    let turn = match started {
        Ok(turn) => turn,
        Err(error) => {
            app.uploads().discard(&attachments).await;
            return Err(error.into());
        }
    };
    let conversation_id = turn.conversation_id;
    let include_reasoning = call.include_reasoning;
    let sources = context.map(|c| c.used(turn.sources_used));
    let frames = turn.filter_map(move |event| {
        let frame = match event {
            Ok(TurnEvent::Delta(StreamEvent::Content { delta })) => {
                Some(sse::json_frame(&DeltaFrame { content: &delta, reasoning: None, done: false }))
            }
            Ok(TurnEvent::Delta(StreamEvent::Reasoning { delta })) if include_reasoning => {
                Some(sse::json_frame(&DeltaFrame { content: "", reasoning: Some(&delta), done: false }))
            }
            Ok(TurnEvent::Delta(_)) => None,
            Ok(TurnEvent::Finished(summary)) => Some(done_frame(&summary, sources.as_deref())),
            Err(error) => Some(sse::json_frame(&ErrorFrame {
                error: &error.to_string(),
                code: error.code(),
                done: true,
                conversation_id,
            })),
        };
        std::future::ready(frame)
    });
    let mut response = sse::response(Body::from_stream(sse::with_keep_alive(sse::coalesce(frames))));
    if let Ok(value) = axum::http::HeaderValue::from_str(&conversation_id.to_string()) {
        response.headers_mut().insert(CONVERSATION_ID.clone(), value);
    }
    Ok(response)
}

fn done_frame(summary: &TurnSummary, sources: Option<&[Source]>) -> bytes::Bytes {
    sse::json_frame(&DoneFrame {
        content: "",
        done: true,
        full_response: &summary.content,
        conversation_id: summary.conversation_id,
        message_id: summary.message_id,
        model: &summary.model,
        finish_reason: summary.finish_reason.as_str(),
        usage: summary.usage,
        sources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ollama_bodies_are_told_apart_by_messages() {
        assert!(is_ollama_chat(br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#));
        assert!(!is_ollama_chat(br#"{"message":"hola","max_tokens":5}"#));
        assert!(!is_ollama_chat(b"not json"));
    }
}
