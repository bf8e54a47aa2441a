//! Saving and reading conversations: `POST /api/save-conversation` (v2 and legacy v1 shapes) and
//! `GET /api/conversations/{id}`.

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use capibara_core::Error;
use capibara_core::chat::Role;
use capibara_core::store::{AppendRequest, NewMessage, StoredMessage, title_from};
use capibara_core::turn::validate_email;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::chat::read_json_body;
use super::chat_input::{idempotency_key, parse_conversation_id};
use super::error::ApiError;
use crate::app::Capibara;

/// The original's error text for an incomplete v2 save; kept because clients show it.
pub(crate) const MESSAGE_AND_RESPONSE_REQUIRED: &str = "Mensaje y respuesta requeridos";
/// Most entries a legacy save may carry.
const MAX_LEGACY_ENTRIES: usize = 10_000;
/// Owner recorded for legacy saves without an e-mail.
const ANONYMOUS: &str = "anonymous";

/// What a save stored.
#[derive(Debug, Serialize)]
pub(crate) struct SaveAnswer {
    success: bool,
    message: &'static str,
    conversation_id: Uuid,
    saved: usize,
    duplicates: usize,
}

/// `POST /api/save-conversation`.
///
/// - v2 `{message, response, email?, conversation_id?}` appends one exchange (to a new conversation
///   unless `conversation_id` names one); an `Idempotency-Key` header makes retries store it once.
/// - legacy v1 `{email, conversations: [{message, timestamp, response?}]}`, still sent by the original
///   frontends after every message with the whole history: entries go to one conversation per e-mail,
///   each stored once however often it is re-sent.
pub(crate) async fn save(
    State(app): State<Capibara>,
    request: Request,
) -> Result<Json<SaveAnswer>, ApiError> {
    let headers = request.headers().clone();
    let body = read_json_body(&app, request).await?;
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", format!("invalid JSON body: {e}"))
    })?;
    let Value::Object(fields) = value else {
        return Err(Error::invalid("expected a JSON object").into());
    };
    let email = match fields.get("email") {
        None | Some(Value::Null) => None,
        Some(Value::String(email)) if email.trim().is_empty() => None,
        Some(Value::String(email)) => {
            validate_email(email.trim())?;
            Some(email.trim().to_owned())
        }
        Some(_) => return Err(Error::invalid("email must be a string").into()),
    };
    let request = if let Some(entries) = fields.get("conversations") {
        legacy_append(email, entries)?
    } else {
        let text =
            |key: &str| fields.get(key).and_then(Value::as_str).map(str::trim).filter(|t| !t.is_empty());
        let (Some(message), Some(response)) = (text("message"), text("response")) else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                MESSAGE_AND_RESPONSE_REQUIRED,
            ));
        };
        let conversation =
            fields.get("conversation_id").and_then(Value::as_str).map(parse_conversation_id).transpose()?;
        let key = idempotency_key(&headers)?;
        let mut user = NewMessage::new(Role::User, message);
        user.dedupe_key = key.as_ref().map(|k| format!("save:{k}:user"));
        let mut assistant = NewMessage::new(Role::Assistant, response);
        assistant.dedupe_key = key.as_ref().map(|k| format!("save:{k}:assistant"));
        AppendRequest {
            conversation_id: conversation.unwrap_or_else(Uuid::now_v7),
            create_if_missing: conversation.is_none(),
            user_email: email,
            title: title_from(message),
            messages: vec![user, assistant],
        }
    };
    let outcome = app.store().append(request).await?;
    Ok(Json(SaveAnswer {
        success: true,
        message: "Conversación guardada",
        conversation_id: outcome.conversation_id,
        saved: outcome.inserted.len(),
        duplicates: outcome.duplicates,
    }))
}

/// The one conversation that holds an e-mail's legacy saves.
fn legacy_conversation_id(owner: &str) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("capibara:legacy-conversation:{owner}").as_bytes())
}

fn legacy_append(email: Option<String>, entries: &Value) -> Result<AppendRequest, ApiError> {
    let Value::Array(entries) = entries else {
        return Err(Error::invalid("conversations must be an array").into());
    };
    if entries.len() > MAX_LEGACY_ENTRIES {
        return Err(
            Error::TooLarge(format!("at most {MAX_LEGACY_ENTRIES} conversation entries per save")).into()
        );
    }
    let owner = email.clone().unwrap_or_else(|| ANONYMOUS.to_owned());
    let mut messages = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let entry = LegacyEntry::read(entry).map_err(|e| e.context(&format!("conversations[{index}]")))?;
        let digest = hex::encode(Sha256::digest(
            format!(
                "{owner}\u{0}{}\u{0}{}\u{0}{}",
                entry.timestamp_text,
                entry.message,
                entry.response.as_deref().unwrap_or("")
            )
            .as_bytes(),
        ));
        let mut user = NewMessage::new(Role::User, entry.message.clone());
        user.dedupe_key = Some(format!("legacy:{digest}:user"));
        user.created_at = entry.timestamp;
        messages.push(user);
        if let Some(response) = entry.response {
            let mut assistant = NewMessage::new(Role::Assistant, response);
            assistant.dedupe_key = Some(format!("legacy:{digest}:assistant"));
            assistant.created_at = entry.timestamp;
            messages.push(assistant);
        }
    }
    if messages.is_empty() {
        return Err(Error::invalid("conversations is empty").into());
    }
    Ok(AppendRequest {
        conversation_id: legacy_conversation_id(&owner),
        create_if_missing: true,
        user_email: email,
        title: Some("Conversaciones guardadas".to_owned()),
        messages,
    })
}

/// One entry of a legacy save. The original clients used several field names over time.
struct LegacyEntry {
    message: String,
    response: Option<String>,
    timestamp_text: String,
    timestamp: Option<DateTime<Utc>>,
}

impl LegacyEntry {
    fn read(value: &Value) -> Result<Self, Error> {
        let Value::Object(fields) = value else {
            return Err(Error::invalid("each entry must be an object"));
        };
        let pick = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| fields.get(*k).and_then(Value::as_str))
                .map(str::trim)
                .filter(|t| !t.is_empty())
        };
        let message = pick(&["message", "user_message", "user", "content"])
            .ok_or_else(|| Error::invalid("an entry has no message"))?
            .to_owned();
        let response = pick(&["response", "ai_response", "bot", "assistant"]).map(str::to_owned);
        let timestamp_text = pick(&["timestamp"]).unwrap_or("").to_owned();
        Ok(Self { message, response, timestamp: parse_timestamp(&timestamp_text), timestamp_text })
    }
}

/// RFC 3339, or the original's naive local ISO format (taken as UTC).
fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|t| t.and_utc()))
}

/// Query of `GET /api/conversations/{id}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ShowQuery {
    /// Newest messages to return (default 1,000, at most 10,000).
    limit: Option<usize>,
}

/// A conversation with its messages.
#[derive(Debug, Serialize)]
pub(crate) struct ConversationView {
    id: Uuid,
    title: Option<String>,
    user_email: Option<String>,
    message_count: u64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    messages: Vec<MessageView>,
}

/// A stored message with its attachments.
#[derive(Debug, Serialize)]
pub(crate) struct MessageView {
    #[serde(flatten)]
    message: StoredMessage,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<capibara_core::store::Attachment>,
}

/// `GET /api/conversations/{id}`: the conversation and its newest messages, oldest first.
pub(crate) async fn show(
    State(app): State<Capibara>,
    Path(id): Path<String>,
    Query(query): Query<ShowQuery>,
) -> Result<Json<ConversationView>, ApiError> {
    let id = parse_conversation_id(&id)?;
    let limit = query.limit.unwrap_or(1000);
    if limit == 0 || limit > 10_000 {
        return Err(Error::invalid("limit must be between 1 and 10000").into());
    }
    let conversation = app.store().conversation(id).await?;
    let mut messages = Vec::new();
    for message in app.store().recent_messages(id, limit).await? {
        let attachments = app.store().attachments(message.id).await?;
        messages.push(MessageView { message, attachments });
    }
    Ok(Json(ConversationView {
        id,
        title: conversation.title,
        user_email: conversation.user_email,
        message_count: conversation.message_count,
        created_at: conversation.created_at,
        updated_at: conversation.updated_at,
        messages,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_entries_accept_every_historic_shape() {
        let request = legacy_append(
            Some("ana@example.com".into()),
            &serde_json::json!([
                {"message": "hola", "timestamp": "2025-10-09T12:00:00.123456"},
                {"user": "¿qué tal?", "bot": "bien", "timestamp": "2025-10-09T12:01:00Z"}
            ]),
        )
        .unwrap();
        assert_eq!(request.messages.len(), 3);
        assert_eq!(request.conversation_id, legacy_conversation_id("ana@example.com"));
        assert!(request.messages.iter().all(|m| m.dedupe_key.is_some() && m.created_at.is_some()));
    }

    #[test]
    fn the_same_entry_always_gets_the_same_key() {
        let entries = serde_json::json!([{"message": "hola", "timestamp": "t"}]);
        let a = legacy_append(None, &entries).unwrap();
        let b = legacy_append(None, &entries).unwrap();
        assert_eq!(a.messages[0].dedupe_key, b.messages[0].dedupe_key);
        assert_eq!(a.conversation_id, legacy_conversation_id(ANONYMOUS));
    }

    #[test]
    fn malformed_legacy_saves_are_refused() {
        assert!(legacy_append(None, &serde_json::json!("x")).is_err());
        assert!(legacy_append(None, &serde_json::json!([])).is_err());
        let error = legacy_append(None, &serde_json::json!([{"timestamp": "t"}])).unwrap_err();
        assert!(error.message.contains("conversations[0]"), "{}", error.message);
    }
}
