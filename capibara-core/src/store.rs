//! The [`ConversationStore`] trait: durable conversations and their messages.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::chat::{FinishReason, Role, Usage};
use crate::error::Result;

/// A stored conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// Id.
    pub id: Uuid,
    /// Owner's e-mail; `None` for anonymous conversations.
    pub user_email: Option<String>,
    /// Title (the start of the first message).
    pub title: Option<String>,
    /// Number of stored messages.
    pub message_count: u64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When a message was last added.
    pub updated_at: DateTime<Utc>,
}

/// A file attached to a message, already written to the data dir.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    /// Id.
    pub id: Uuid,
    /// The name the client gave the file.
    pub original_name: String,
    /// Where it is stored, relative to the data dir.
    pub stored_path: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// MIME type the client declared, when it did.
    pub content_type: Option<String>,
    /// SHA-256 of the content, hex.
    pub sha256: String,
}

/// A message to store.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewMessage {
    /// Author.
    pub role: Option<Role>,
    /// Visible text.
    pub content: String,
    /// The model's reasoning, kept apart from the content.
    pub reasoning: Option<String>,
    /// Model that wrote it (assistant messages).
    pub model: Option<String>,
    /// Token accounting (assistant messages).
    pub usage: Option<Usage>,
    /// Time from request to the end of the answer (assistant messages).
    pub latency_ms: Option<u64>,
    /// Why generation stopped (assistant messages).
    pub finish_reason: Option<FinishReason>,
    /// The answer was interrupted (client gone, upstream cut) and is incomplete.
    pub partial: bool,
    /// A message with a key already stored is skipped, so retried saves store nothing twice.
    pub dedupe_key: Option<String>,
    /// When it was written; `None` means now.
    pub created_at: Option<DateTime<Utc>>,
    /// Files attached to it.
    pub attachments: Vec<Attachment>,
}

impl NewMessage {
    /// A message with a role and content.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self { role: Some(role), content: content.into(), ..Self::default() }
    }
}

/// A stored message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// Id.
    pub id: Uuid,
    /// Conversation it belongs to.
    pub conversation_id: Uuid,
    /// Position in the conversation, from 1.
    pub seq: u64,
    /// Author.
    pub role: Role,
    /// Visible text.
    pub content: String,
    /// The model's reasoning.
    pub reasoning: Option<String>,
    /// Model that wrote it.
    pub model: Option<String>,
    /// Token accounting.
    pub usage: Option<Usage>,
    /// Time from request to the end of the answer.
    pub latency_ms: Option<u64>,
    /// Why generation stopped.
    pub finish_reason: Option<FinishReason>,
    /// The answer was interrupted and is incomplete.
    pub partial: bool,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// Messages to add to a conversation in one atomic write.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendRequest {
    /// Conversation to add to.
    pub conversation_id: Uuid,
    /// Create the conversation when it does not exist (otherwise that is `NotFound`).
    pub create_if_missing: bool,
    /// Owner's e-mail, recorded when the conversation is created.
    pub user_email: Option<String>,
    /// Title, recorded when the conversation is created.
    pub title: Option<String>,
    /// The messages, in order.
    pub messages: Vec<NewMessage>,
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppendOutcome {
    /// The conversation.
    pub conversation_id: Uuid,
    /// Whether this append created it.
    pub created: bool,
    /// Ids of the messages stored, in order.
    pub inserted: Vec<Uuid>,
    /// Messages skipped because their dedupe key was already stored.
    pub duplicates: usize,
}

/// Durable conversations.
///
/// Every write is atomic: either all messages of an [`AppendRequest`] are stored (and the
/// conversation created if asked), or none are.
#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// Adds messages to a conversation, atomically.
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome>;

    /// A conversation by id (`NotFound` if unknown).
    async fn conversation(&self, id: Uuid) -> Result<Conversation>;

    /// The newest `limit` messages of a conversation, oldest first (`NotFound` if unknown).
    async fn recent_messages(&self, id: Uuid, limit: usize) -> Result<Vec<StoredMessage>>;

    /// Attachments of a message.
    async fn attachments(&self, message_id: Uuid) -> Result<Vec<Attachment>>;

    /// How many conversations are stored.
    async fn count_conversations(&self) -> Result<u64>;

    /// Checks the store answers (a cheap round trip); stores without a connection are always fine.
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

#[async_trait]
impl<T: ConversationStore + ?Sized> ConversationStore for Arc<T> {
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome> {
        (**self).append(request).await
    }
    async fn conversation(&self, id: Uuid) -> Result<Conversation> {
        (**self).conversation(id).await
    }
    async fn recent_messages(&self, id: Uuid, limit: usize) -> Result<Vec<StoredMessage>> {
        (**self).recent_messages(id, limit).await
    }
    async fn attachments(&self, message_id: Uuid) -> Result<Vec<Attachment>> {
        (**self).attachments(message_id).await
    }
    async fn count_conversations(&self) -> Result<u64> {
        (**self).count_conversations().await
    }
    async fn ping(&self) -> Result<()> {
        (**self).ping().await
    }
}

/// A title for a new conversation: the first line of its first message, cut to 80 characters.
pub fn title_from(message: &str) -> Option<String> {
    let line = message.lines().map(str::trim).find(|l| !l.is_empty())?;
    let mut title: String = line.chars().take(80).collect();
    if line.chars().count() > 80 {
        title.push('…');
    }
    Some(title)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_use_the_first_non_empty_line() {
        assert_eq!(title_from("\n  Hola qué tal\nsegunda").as_deref(), Some("Hola qué tal"));
        assert_eq!(title_from("   "), None);
        let long = "á".repeat(100);
        assert_eq!(title_from(&long).unwrap().chars().count(), 81);
    }
}
