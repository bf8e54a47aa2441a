//! Reading conversations, messages and attachments back into domain types.

use capibara_core::chat::{FinishReason, Usage};
use capibara_core::store::{Attachment, Conversation, StoredMessage};
use capibara_core::{Error, Result};
use sqlx::any::AnyRow;
use sqlx::{Decode, Row, Type};
use uuid::Uuid;

use super::SqlStore;
use super::columns::{from_bigint, parse_id, parse_role, parse_timestamp, token_count};

const SELECT_CONVERSATION: &str = "SELECT c.id, u.email, c.title, c.message_count, c.created_at, c.updated_at \
     FROM conversations c LEFT JOIN users u ON u.id = c.user_id WHERE c.id = $1";

const CONVERSATION_EXISTS: &str = "SELECT id FROM conversations WHERE id = $1";

const SELECT_NEWEST_MESSAGES: &str = "SELECT id, conversation_id, seq, role, content, reasoning, model, \
     prompt_tokens, completion_tokens, latency_ms, finish_reason, partial, created_at \
     FROM messages WHERE conversation_id = $1 ORDER BY seq DESC LIMIT $2";

const SELECT_UPLOADS: &str = "SELECT id, original_name, stored_path, size_bytes, content_type, sha256 \
     FROM uploads WHERE message_id = $1 ORDER BY position";

const COUNT_CONVERSATIONS: &str = "SELECT COUNT(*) FROM conversations";

impl SqlStore {
    pub(super) async fn read_conversation(&self, id: Uuid) -> Result<Conversation> {
        let row = sqlx::query(SELECT_CONVERSATION)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.errors.map(&format!("reading conversation {id}"), &e))?
            .ok_or_else(|| not_found(id))?;
        let columns = Columns { row: &row, table: "conversations" };
        Ok(Conversation {
            id: parse_id(&columns.get::<String>("id")?)?,
            user_email: columns.get("email")?,
            title: columns.get("title")?,
            message_count: from_bigint(columns.get("message_count")?, "message_count")?,
            created_at: parse_timestamp(&columns.get::<String>("created_at")?)?,
            updated_at: parse_timestamp(&columns.get::<String>("updated_at")?)?,
        })
    }

    pub(super) async fn read_recent_messages(&self, id: Uuid, limit: usize) -> Result<Vec<StoredMessage>> {
        let conversation = id.to_string();
        let exists: Option<String> = sqlx::query_scalar(CONVERSATION_EXISTS)
            .bind(&conversation)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.errors.map(&format!("reading conversation {id}"), &e))?;
        if exists.is_none() {
            return Err(not_found(id));
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = sqlx::query(SELECT_NEWEST_MESSAGES)
            .bind(&conversation)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.errors.map(&format!("reading the messages of conversation {id}"), &e))?;
        // Fetched newest first so LIMIT keeps the newest; returned oldest first.
        rows.iter().rev().map(message_from_row).collect()
    }

    pub(super) async fn read_attachments(&self, message_id: Uuid) -> Result<Vec<Attachment>> {
        let rows =
            sqlx::query(SELECT_UPLOADS).bind(message_id.to_string()).fetch_all(&self.pool).await.map_err(
                |e| self.errors.map(&format!("reading the attachments of message {message_id}"), &e),
            )?;
        rows.iter()
            .map(|row| {
                let columns = Columns { row, table: "uploads" };
                Ok(Attachment {
                    id: parse_id(&columns.get::<String>("id")?)?,
                    original_name: columns.get("original_name")?,
                    stored_path: columns.get("stored_path")?,
                    size_bytes: from_bigint(columns.get("size_bytes")?, "size_bytes")?,
                    content_type: columns.get("content_type")?,
                    sha256: columns.get("sha256")?,
                })
            })
            .collect()
    }

    pub(super) async fn read_conversation_count(&self) -> Result<u64> {
        let count: i64 = sqlx::query_scalar(COUNT_CONVERSATIONS)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.errors.map("counting conversations", &e))?;
        from_bigint(count, "conversation count")
    }
}

fn not_found(id: Uuid) -> Error {
    Error::NotFound(format!("conversation {id}"))
}

fn message_from_row(row: &AnyRow) -> Result<StoredMessage> {
    let columns = Columns { row, table: "messages" };
    let prompt_tokens: Option<i64> = columns.get("prompt_tokens")?;
    let completion_tokens: Option<i64> = columns.get("completion_tokens")?;
    let usage = match (prompt_tokens, completion_tokens) {
        (Some(prompt), Some(completion)) => Some(Usage {
            prompt_tokens: token_count(prompt, "prompt_tokens")?,
            completion_tokens: token_count(completion, "completion_tokens")?,
        }),
        _ => None,
    };
    let partial: i64 = columns.get("partial")?;
    Ok(StoredMessage {
        id: parse_id(&columns.get::<String>("id")?)?,
        conversation_id: parse_id(&columns.get::<String>("conversation_id")?)?,
        seq: from_bigint(columns.get("seq")?, "seq")?,
        role: parse_role(&columns.get::<String>("role")?)?,
        content: columns.get("content")?,
        reasoning: columns.get("reasoning")?,
        model: columns.get("model")?,
        usage,
        latency_ms: columns
            .get::<Option<i64>>("latency_ms")?
            .map(|ms| from_bigint(ms, "latency_ms"))
            .transpose()?,
        finish_reason: columns
            .get::<Option<String>>("finish_reason")?
            .as_deref()
            .map(FinishReason::from_wire),
        partial: partial != 0,
        created_at: parse_timestamp(&columns.get::<String>("created_at")?)?,
    })
}

/// Typed access to a row's columns, with errors that say which column of which table.
pub(super) struct Columns<'r> {
    pub(super) row: &'r AnyRow,
    pub(super) table: &'static str,
}

impl<'r> Columns<'r> {
    pub(super) fn get<T>(&self, column: &str) -> Result<T>
    where
        T: Decode<'r, sqlx::Any> + Type<sqlx::Any>,
    {
        self.row
            .try_get(column)
            .map_err(|e| Error::internal(format!("reading column {}.{column}: {e}", self.table)))
    }
}
