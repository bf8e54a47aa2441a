//! Durable conversations in SQL: a SQLite file by default, PostgreSQL by configuration.
//!
//! [`SqlStore`] implements [`ConversationStore`] over either engine with the same migrations
//! (`capibara-server/migrations/`) and the same SQL text. Every append is one transaction: it
//! stores all of its messages (creating the conversation and its owner when asked) or nothing, and
//! concurrent appends to one conversation get distinct, contiguous positions.
//!
//! ```no_run
//! # async fn run() -> capibara_core::Result<()> {
//! use capibara_core::chat::Role;
//! use capibara_core::store::{AppendRequest, ConversationStore, NewMessage};
//! use capibara_server::store::SqlStore;
//!
//! let store = SqlStore::connect("sqlite://capibara-data/capibara.db?mode=rwc", 8).await?;
//! let id = uuid::Uuid::now_v7();
//! store
//!     .append(AppendRequest {
//!         conversation_id: id,
//!         create_if_missing: true,
//!         user_email: None,
//!         title: Some("Saludo".into()),
//!         messages: vec![NewMessage::new(Role::User, "Hola")],
//!     })
//!     .await?;
//! assert_eq!(store.recent_messages(id, 10).await?.len(), 1);
//! store.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! Why one `Any` pool rather than two typed pools: every operation is a single SQL text and a
//! single Rust path, so the engines cannot drift apart, and the portable schema only needs the
//! types `Any` carries on both engines (`TEXT` and `BIGINT`). What `Any` cannot express — SQLite's
//! per-file and per-connection settings — is applied when connecting, with a first typed SQLite
//! connection so a corrupt file fails with SQLite's own error.

mod append;
mod columns;
mod connect;
mod errors;
mod ledger;
mod read;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use capibara_core::store::{
    AppendOutcome, AppendRequest, Attachment, Conversation, ConversationStore, StoredMessage,
};
use capibara_core::{Error, Result};
use sqlx::AnyPool;
use tokio::sync::Mutex;
use uuid::Uuid;

use errors::ErrorMapper;
pub use ledger::{LedgerCounts, SqlLedger};

/// The database engine behind a [`SqlStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatabaseEngine {
    /// A SQLite file (`sqlite://path?mode=rwc`).
    Sqlite,
    /// A PostgreSQL server (`postgres://…` or `postgresql://…`).
    Postgres,
}

impl DatabaseEngine {
    /// The engine a database URL names.
    pub fn from_url(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(Error::invalid("a database URL must start with sqlite:, postgres:// or postgresql://"))
        }
    }

    /// The engine's usual name (`SQLite`, `PostgreSQL`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

impl fmt::Display for DatabaseEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Conversations, messages, users and uploads in SQLite or PostgreSQL. Cheap to clone (one pool).
#[derive(Clone)]
pub struct SqlStore {
    pool: AnyPool,
    engine: DatabaseEngine,
    errors: ErrorMapper,
    /// SQLite has one writer at a time; queueing writers here (before they take a pooled
    /// connection) keeps them from failing with `SQLITE_BUSY` and leaves connections to readers.
    /// PostgreSQL needs no such queue: appends lock their conversation row instead.
    writer: Option<Arc<Mutex<()>>>,
}

impl fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore").field("engine", &self.engine).finish_non_exhaustive()
    }
}

impl SqlStore {
    /// Connects to `database_url` and brings its schema up to date.
    ///
    /// `sqlite://path?mode=rwc` creates the file and its directory when missing;
    /// `postgres://user:password@host/db` connects to a server. Fails — and never starts from an
    /// empty database instead — when the server cannot be reached (`Unavailable`), the SQLite file
    /// is corrupt or a migration fails (`Internal`).
    pub async fn connect(database_url: &str, max_connections: u32) -> Result<Self> {
        let engine = DatabaseEngine::from_url(database_url)?;
        let errors = ErrorMapper::new(engine, database_url);
        let pool = connect::open_pool(database_url, engine, max_connections, &errors).await?;
        let writer = (engine == DatabaseEngine::Sqlite).then(|| Arc::new(Mutex::new(())));
        tracing::info!(engine = engine.name(), "conversation store ready");
        Ok(Self { pool, engine, errors, writer })
    }

    /// Which engine this store runs on.
    pub fn backend(&self) -> DatabaseEngine {
        self.engine
    }

    /// Closes every connection, waiting for those in use to be returned. Later calls fail with
    /// `Unavailable`.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl ConversationStore for SqlStore {
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome> {
        self.append_atomically(request).await
    }

    async fn conversation(&self, id: Uuid) -> Result<Conversation> {
        self.read_conversation(id).await
    }

    async fn recent_messages(&self, id: Uuid, limit: usize) -> Result<Vec<StoredMessage>> {
        self.read_recent_messages(id, limit).await
    }

    async fn attachments(&self, message_id: Uuid) -> Result<Vec<Attachment>> {
        self.read_attachments(message_id).await
    }

    async fn count_conversations(&self) -> Result<u64> {
        self.read_conversation_count().await
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(|e| self.errors.map("answering a ping", &e))?;
        Ok(())
    }
}
