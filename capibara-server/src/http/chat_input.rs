//! Reading a Capibara6 chat request (JSON or multipart with `files`) into a [`TurnInput`].

use axum::extract::Multipart;
use axum::extract::multipart::MultipartError;
use axum::http::{HeaderMap, StatusCode};
use capibara_core::Error;
use capibara_core::chat::SamplingOptions;
use capibara_core::turn::{TurnAttachment, TurnInput};
use serde::Deserialize;
use uuid::Uuid;

use super::error::ApiError;
use crate::rag::{RagMode, RagRequest};
use crate::uploads::UploadStore;
use capibara_core::vector::Filter;

/// The message the original server answered an empty chat with; kept because clients show it.
pub(crate) const MESSAGE_REQUIRED: &str = "Mensaje requerido";

/// The fields of a Capibara6 chat request. Unknown fields are ignored, as the original did.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ChatForm {
    /// The user's message (`prompt` is accepted too, as some original clients send it).
    #[serde(alias = "prompt")]
    pub(crate) message: Option<String>,
    /// The user's e-mail; empty means anonymous.
    pub(crate) email: Option<String>,
    /// Most tokens to generate (`n_predict` accepted too).
    #[serde(alias = "n_predict")]
    pub(crate) max_tokens: Option<u32>,
    /// Sampling temperature.
    pub(crate) temperature: Option<f32>,
    /// Nucleus sampling mass.
    pub(crate) top_p: Option<f32>,
    /// Top-k sampling.
    pub(crate) top_k: Option<u32>,
    /// Repetition penalty.
    pub(crate) repeat_penalty: Option<f32>,
    /// Sampling seed.
    pub(crate) seed: Option<u64>,
    /// Conversation to continue.
    pub(crate) conversation_id: Option<String>,
    /// Model to ask.
    pub(crate) model: Option<String>,
    /// Also stream the model's reasoning (as separate `reasoning` fields, never as content).
    pub(crate) include_reasoning: bool,
    /// Answer from retrieved sources (returned with the answer).
    pub(crate) use_rag: bool,
    /// How to retrieve when `use_rag` is set (guided by default).
    pub(crate) rag_mode: Option<RagMode>,
    /// Metadata filter for retrieval when `use_rag` is set.
    pub(crate) rag_filter: Option<Filter>,
}

/// A parsed chat request.
#[derive(Debug)]
pub(crate) struct ChatCall {
    /// What the turn runs with.
    pub(crate) input: TurnInput,
    /// Whether the client wants reasoning frames.
    pub(crate) include_reasoning: bool,
    /// Retrieval to answer from, when asked for.
    pub(crate) rag: Option<RagRequest>,
}

impl ChatForm {
    /// Checks and converts the form; attachments were already stored.
    pub(crate) fn into_call(
        self,
        attachments: Vec<TurnAttachment>,
        headers: &HeaderMap,
    ) -> Result<ChatCall, ApiError> {
        let message = self.message.unwrap_or_default();
        if message.trim().is_empty() {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_input", MESSAGE_REQUIRED));
        }
        let conversation_id = self.conversation_id.as_deref().map(parse_conversation_id).transpose()?;
        let user_email = self.email.map(|e| e.trim().to_owned()).filter(|e| !e.is_empty());
        let options = SamplingOptions {
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            max_tokens: self.max_tokens,
            seed: self.seed,
            repeat_penalty: self.repeat_penalty,
            ..SamplingOptions::default()
        };
        Ok(ChatCall {
            input: TurnInput {
                conversation_id,
                user_email,
                message,
                attachments,
                model: self.model.filter(|m| !m.trim().is_empty()),
                options,
                idempotency_key: idempotency_key(headers)?,
                sources: Vec::new(),
            },
            include_reasoning: self.include_reasoning,
            rag: self
                .use_rag
                .then(|| RagRequest { mode: self.rag_mode.unwrap_or_default(), filter: self.rag_filter }),
        })
    }
}

/// Parses a conversation id, with a clear error for anything that is not a UUID.
pub(crate) fn parse_conversation_id(text: &str) -> Result<Uuid, ApiError> {
    Ok(crate::rag::parse_conversation_id(text)?)
}

/// The `Idempotency-Key` header, if sent (bounded, printable).
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key = value.to_str().ok().filter(|k| !k.is_empty() && k.len() <= 200);
    key.map(|k| Some(k.to_owned()))
        .ok_or_else(|| Error::invalid("Idempotency-Key must be 1 to 200 printable characters").into())
}

/// Reads a JSON chat form.
pub(crate) fn form_from_json(body: &[u8]) -> Result<ChatForm, ApiError> {
    super::json::parse(body)
}

pub(crate) fn multipart_error(error: &MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "request body is larger than the server accepts",
        )
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            format!("malformed multipart body: {}", error.body_text()),
        )
    }
}

/// Reads a multipart chat form: text fields plus any number of `files` parts (up to the limit).
///
/// Files are stored as they arrive. When one is refused (too large, wrong type) the rest of the body
/// is still read — so the client, still sending, gets the error instead of a reset connection —
/// and the files already stored are removed.
pub(crate) async fn form_from_multipart(
    mut multipart: Multipart,
    uploads: &UploadStore,
    max_field_bytes: usize,
) -> Result<(ChatForm, Vec<TurnAttachment>), ApiError> {
    let mut fields = serde_json::Map::new();
    let mut stored: Vec<TurnAttachment> = Vec::new();
    let mut refusal: Option<ApiError> = None;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) => {
                refusal.get_or_insert(multipart_error(&error));
                break;
            }
        };
        let name = field.name().unwrap_or_default().to_owned();
        if let Some(file_name) = field.file_name().map(str::to_owned) {
            if refusal.is_some() {
                drain(&mut field).await;
                continue;
            }
            if file_name.is_empty() {
                drain(&mut field).await; // an unused file input
                continue;
            }
            if stored.len() >= uploads.rules().max_files {
                refusal = Some(
                    Error::TooLarge(format!("at most {} files per message", uploads.rules().max_files))
                        .into(),
                );
                drain(&mut field).await;
                continue;
            }
            let mut incoming = match uploads.begin(&file_name, field.content_type()) {
                Ok(incoming) => incoming,
                Err(error) => {
                    refusal = Some(error.into());
                    drain(&mut field).await;
                    continue;
                }
            };
            let mut failed = false;
            loop {
                match field.chunk().await {
                    Ok(Some(chunk)) => {
                        if !failed && let Err(error) = incoming.push(&chunk) {
                            refusal = Some(error.into());
                            failed = true;
                        }
                    }
                    Ok(None) => break,
                    Err(error) => {
                        refusal.get_or_insert(multipart_error(&error));
                        failed = true;
                        break;
                    }
                }
            }
            if !failed {
                match uploads.store(incoming).await {
                    Ok(attachment) => stored.push(attachment),
                    Err(error) => refusal = Some(error.into()),
                }
            }
        } else {
            let text = match field.text().await {
                Ok(text) => text,
                Err(error) => {
                    refusal.get_or_insert(multipart_error(&error));
                    continue;
                }
            };
            if text.len() > max_field_bytes {
                refusal.get_or_insert(Error::TooLarge(format!("form field `{name}` is too large")).into());
                continue;
            }
            fields.insert(name, form_value(&text));
        }
    }
    if let Some(error) = refusal {
        uploads.discard(&stored).await;
        return Err(error);
    }
    match serde_json::from_value::<ChatForm>(serde_json::Value::Object(fields)) {
        Ok(form) => Ok((form, stored)),
        Err(error) => {
            uploads.discard(&stored).await;
            Err(Error::invalid(format!("invalid form field: {error}")).into())
        }
    }
}

/// Form fields are text; numbers and booleans are given their JSON type so the same form struct
/// reads both encodings (`max_tokens=200` → 200).
fn form_value(text: &str) -> serde_json::Value {
    let trimmed = text.trim();
    if let Ok(number) = trimmed.parse::<serde_json::Number>() {
        return serde_json::Value::Number(number);
    }
    match trimmed {
        "true" => serde_json::Value::Bool(true),
        "false" => serde_json::Value::Bool(false),
        _ => serde_json::Value::String(text.to_owned()),
    }
}

async fn drain(field: &mut axum::extract::multipart::Field<'_>) {
    while let Ok(Some(_)) = field.chunk().await {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_messages_get_the_original_error_text() {
        let form = form_from_json(br#"{"message": "   "}"#).unwrap();
        let error = form.into_call(Vec::new(), &HeaderMap::new()).unwrap_err();
        assert_eq!((error.status, error.message.as_str()), (StatusCode::BAD_REQUEST, MESSAGE_REQUIRED));
    }

    #[test]
    fn prompt_and_n_predict_are_accepted_as_aliases() {
        let form = form_from_json(br#"{"prompt": "hola", "n_predict": 5, "extra": 1}"#).unwrap();
        let call = form.into_call(Vec::new(), &HeaderMap::new()).unwrap();
        assert_eq!(call.input.message, "hola");
        assert_eq!(call.input.options.max_tokens, Some(5));
    }

    #[test]
    fn wrong_types_and_bad_ids_are_clear_errors() {
        let error = form_from_json(br#"{"message": "hola", "max_tokens": "mucho"}"#).unwrap_err();
        assert!(error.message.contains("max_tokens"), "{}", error.message);
        let form = form_from_json(br#"{"message": "hola", "conversation_id": "nope"}"#).unwrap();
        assert!(form.into_call(Vec::new(), &HeaderMap::new()).unwrap_err().message.contains("nope"));
        assert_eq!(form_from_json(b"{not json").unwrap_err().code, "invalid_json");
    }

    #[test]
    fn form_text_takes_json_types() {
        assert_eq!(form_value("200"), serde_json::json!(200));
        assert_eq!(form_value("0.8"), serde_json::json!(0.8));
        assert_eq!(form_value("hola"), serde_json::json!("hola"));
    }
}
