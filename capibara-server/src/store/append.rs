//! Appending messages: one transaction per [`AppendRequest`], all of it stored or none of it.
//!
//! The transaction first locks the conversation row with an `UPDATE … RETURNING`, which on
//! PostgreSQL makes concurrent appends to one conversation wait for each other and on SQLite takes
//! the file's write lock up front. Each message then gets the next `seq` only if its insert really
//! happened (`ON CONFLICT (dedupe_key) DO NOTHING` skips retried saves, including a concurrent
//! one), so positions stay contiguous.

use capibara_core::chat::Role;
use capibara_core::store::{AppendOutcome, AppendRequest, Attachment, NewMessage};
use capibara_core::{Error, Result};
use chrono::Utc;
use sqlx::{Any, Transaction};
use uuid::Uuid;

use super::SqlStore;
use super::columns::{finish_reason, timestamp, to_bigint};
use super::errors::ErrorMapper;

const LOCK_CONVERSATION: &str =
    "UPDATE conversations SET message_count = message_count WHERE id = $1 RETURNING message_count";

const INSERT_USER: &str =
    "INSERT INTO users (id, email, created_at) VALUES ($1, $2, $3) ON CONFLICT (email) DO NOTHING";

const SELECT_USER: &str = "SELECT id FROM users WHERE email = $1";

const INSERT_CONVERSATION: &str = "INSERT INTO conversations \
     (id, user_id, title, message_count, created_at, updated_at) VALUES ($1, $2, $3, 0, $4, $4) \
     ON CONFLICT (id) DO NOTHING RETURNING id";

const INSERT_MESSAGE: &str = "INSERT INTO messages \
     (id, conversation_id, seq, role, content, reasoning, model, prompt_tokens, completion_tokens, \
      latency_ms, finish_reason, partial, dedupe_key, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
     ON CONFLICT (dedupe_key) DO NOTHING RETURNING id";

const INSERT_UPLOAD: &str = "INSERT INTO uploads \
     (id, message_id, position, original_name, stored_path, size_bytes, content_type, sha256, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

const FINISH_CONVERSATION: &str =
    "UPDATE conversations SET message_count = $2, updated_at = $3 WHERE id = $1";

/// A message's columns, checked and converted before the transaction starts.
struct MessageColumns<'a> {
    message: &'a NewMessage,
    role: Role,
    prompt_tokens: Option<i64>,
    completion_tokens: Option<i64>,
    latency_ms: Option<i64>,
    finish_reason: Option<String>,
    created_at: Option<String>,
    attachment_sizes: Vec<i64>,
}

impl<'a> MessageColumns<'a> {
    fn new(index: usize, message: &'a NewMessage) -> Result<Self> {
        let role = message.role.ok_or_else(|| {
            Error::invalid(format!("message {index} has no role; a stored message needs one"))
        })?;
        let latency_ms = message.latency_ms.map(|ms| to_bigint(ms, "latency_ms")).transpose()?;
        let attachment_sizes = message
            .attachments
            .iter()
            .map(|a| to_bigint(a.size_bytes, "attachment size"))
            .collect::<Result<_>>()?;
        Ok(Self {
            message,
            role,
            prompt_tokens: message.usage.map(|u| i64::from(u.prompt_tokens)),
            completion_tokens: message.usage.map(|u| i64::from(u.completion_tokens)),
            latency_ms,
            finish_reason: message.finish_reason.as_ref().map(finish_reason),
            created_at: message.created_at.map(timestamp),
            attachment_sizes,
        })
    }
}

/// What the transaction did, and whether there is anything to commit.
struct Written {
    outcome: AppendOutcome,
    changed: bool,
}

impl SqlStore {
    pub(super) async fn append_atomically(&self, request: AppendRequest) -> Result<AppendOutcome> {
        // A malformed message fails the whole request before anything is written.
        let columns = request
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| MessageColumns::new(i, m))
            .collect::<Result<Vec<_>>>()?;
        // Taken before a pooled connection, so queued SQLite writers do not hold connections idle.
        let _writer = match &self.writer {
            Some(writer) => Some(writer.lock().await),
            None => None,
        };
        let mut tx = self.pool.begin().await.map_err(|e| self.errors.map("starting a transaction", &e))?;
        // On error the transaction is dropped, which rolls it back.
        let written = write(&mut tx, &request, &columns, &self.errors).await?;
        if written.changed {
            tx.commit().await.map_err(|e| self.errors.map("committing messages", &e))?;
        } else {
            tx.rollback().await.map_err(|e| self.errors.map("rolling back an empty append", &e))?;
        }
        Ok(written.outcome)
    }
}

async fn write(
    tx: &mut Transaction<'static, Any>,
    request: &AppendRequest,
    columns: &[MessageColumns<'_>],
    errors: &ErrorMapper,
) -> Result<Written> {
    let conversation_id = request.conversation_id.to_string();
    let now = timestamp(Utc::now());
    let (mut count, created) = match lock_conversation(tx, &conversation_id, errors).await? {
        Some(count) => (count, false),
        None if !request.create_if_missing => {
            return Err(Error::NotFound(format!("conversation {}", request.conversation_id)));
        }
        None if create_conversation(tx, request, &now, errors).await? => (0, true),
        // Another append created it meanwhile (PostgreSQL waited for it to commit): use theirs.
        None => (
            lock_conversation(tx, &conversation_id, errors).await?.ok_or_else(|| {
                Error::internal(format!("conversation {conversation_id} vanished while appending"))
            })?,
            false,
        ),
    };
    let mut inserted = Vec::new();
    let mut duplicates = 0;
    for message in columns {
        let id = Uuid::now_v7();
        if insert_message(tx, id, &conversation_id, count + 1, message, &now, errors).await? {
            count += 1;
            inserted.push(id);
        } else {
            duplicates += 1;
        }
    }
    let changed = !inserted.is_empty();
    if changed {
        sqlx::query(FINISH_CONVERSATION)
            .bind(&conversation_id)
            .bind(count)
            .bind(&now)
            .execute(&mut **tx)
            .await
            .map_err(|e| errors.map("updating the conversation", &e))?;
    }
    // A conversation whose every message was a duplicate is rolled back: nothing is created.
    let outcome = AppendOutcome {
        conversation_id: request.conversation_id,
        created: created && changed,
        inserted,
        duplicates,
    };
    Ok(Written { outcome, changed })
}

/// Locks the conversation row for the rest of the transaction; its message count, if it exists.
async fn lock_conversation(
    tx: &mut Transaction<'static, Any>,
    id: &str,
    errors: &ErrorMapper,
) -> Result<Option<i64>> {
    sqlx::query_scalar(LOCK_CONVERSATION)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(|e| errors.map(&format!("locking conversation {id}"), &e))
}

/// Inserts the conversation (and its owner, found or created by e-mail). `false` when a
/// concurrent append inserted it first.
async fn create_conversation(
    tx: &mut Transaction<'static, Any>,
    request: &AppendRequest,
    now: &str,
    errors: &ErrorMapper,
) -> Result<bool> {
    let email = request.user_email.as_deref().map(str::trim).filter(|e| !e.is_empty());
    let user_id = match email {
        Some(email) => Some(user_by_email(tx, email, now, errors).await?),
        None => None,
    };
    let created: Option<String> = sqlx::query_scalar(INSERT_CONVERSATION)
        .bind(request.conversation_id.to_string())
        .bind(user_id)
        .bind(request.title.as_deref())
        .bind(now)
        .fetch_optional(&mut **tx)
        .await
        .map_err(|e| errors.map("creating the conversation", &e))?;
    Ok(created.is_some())
}

/// The id of the user with this e-mail, created if new.
async fn user_by_email(
    tx: &mut Transaction<'static, Any>,
    email: &str,
    now: &str,
    errors: &ErrorMapper,
) -> Result<String> {
    sqlx::query(INSERT_USER)
        .bind(Uuid::now_v7().to_string())
        .bind(email)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(|e| errors.map("creating the user", &e))?;
    sqlx::query_scalar(SELECT_USER)
        .bind(email)
        .fetch_one(&mut **tx)
        .await
        .map_err(|e| errors.map("finding the user", &e))
}

/// Inserts one message and its attachments at `seq`; `false` when its dedupe key is already stored.
async fn insert_message(
    tx: &mut Transaction<'static, Any>,
    id: Uuid,
    conversation_id: &str,
    seq: i64,
    columns: &MessageColumns<'_>,
    now: &str,
    errors: &ErrorMapper,
) -> Result<bool> {
    let message = columns.message;
    let id = id.to_string();
    let created_at = columns.created_at.as_deref().unwrap_or(now);
    let stored: Option<String> = sqlx::query_scalar(INSERT_MESSAGE)
        .bind(&id)
        .bind(conversation_id)
        .bind(seq)
        .bind(columns.role.as_str())
        .bind(message.content.as_str())
        .bind(message.reasoning.as_deref())
        .bind(message.model.as_deref())
        .bind(columns.prompt_tokens)
        .bind(columns.completion_tokens)
        .bind(columns.latency_ms)
        .bind(columns.finish_reason.as_deref())
        .bind(i64::from(message.partial))
        .bind(message.dedupe_key.as_deref())
        .bind(created_at)
        .fetch_optional(&mut **tx)
        .await
        .map_err(|e| errors.map(&format!("storing message {seq} of conversation {conversation_id}"), &e))?;
    if stored.is_none() {
        return Ok(false);
    }
    for (position, (attachment, size)) in
        message.attachments.iter().zip(&columns.attachment_sizes).enumerate()
    {
        insert_upload(tx, &id, position, attachment, *size, created_at, errors).await?;
    }
    Ok(true)
}

async fn insert_upload(
    tx: &mut Transaction<'static, Any>,
    message_id: &str,
    position: usize,
    attachment: &Attachment,
    size: i64,
    created_at: &str,
    errors: &ErrorMapper,
) -> Result<()> {
    let position = to_bigint(position as u64, "attachment position")?;
    sqlx::query(INSERT_UPLOAD)
        .bind(attachment.id.to_string())
        .bind(message_id)
        .bind(position)
        .bind(attachment.original_name.as_str())
        .bind(attachment.stored_path.as_str())
        .bind(size)
        .bind(attachment.content_type.as_deref())
        .bind(attachment.sha256.as_str())
        .bind(created_at)
        .execute(&mut **tx)
        .await
        .map_err(|e| errors.map(&format!("storing attachment `{}`", attachment.original_name), &e))?;
    Ok(())
}
