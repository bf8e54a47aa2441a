//! Opening the pool: the SQLite file prepared and checked, per-connection settings, migrations.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use capibara_core::{Error, Result};
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{AnyPool, ConnectOptions, Connection, Executor};

use super::DatabaseEngine;
use super::errors::ErrorMapper;

/// The schema, the same files for both engines.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// How long a request waits for a pooled connection (or a server to accept one) before the
/// database counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a SQLite connection waits for another process's write lock before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings SQLite keeps per connection: enforce foreign keys, wait for locks instead of failing,
/// and sync at checkpoints rather than at every commit (safe with WAL: a crash loses at most the
/// last commits, never consistency).
fn sqlite_connection_settings() -> String {
    format!(
        "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {}; PRAGMA synchronous = NORMAL;",
        SQLITE_BUSY_TIMEOUT.as_millis()
    )
}

/// Opens a pool on `url` and applies pending migrations.
pub(super) async fn open_pool(
    url: &str,
    engine: DatabaseEngine,
    max_connections: u32,
    errors: &ErrorMapper,
) -> Result<AnyPool> {
    if max_connections == 0 {
        return Err(Error::invalid("a database pool needs at least one connection"));
    }
    if engine == DatabaseEngine::Sqlite {
        prepare_sqlite_file(url, errors).await?;
    }
    sqlx::any::install_default_drivers();
    let settings: Arc<str> = sqlite_connection_settings().into();
    let pool = AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(move |connection, _| {
            let settings = Arc::clone(&settings);
            Box::pin(async move {
                if engine == DatabaseEngine::Sqlite {
                    connection.execute(&*settings).await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await
        .map_err(|e| match e {
            // sqlx retries refused connections until the timeout, which then hides the cause.
            sqlx::Error::PoolTimedOut => Error::unavailable(format!(
                "{engine}: connecting to {}: no server accepted a connection within {} s (is it running and \
                 reachable?)",
                errors.redacted_url(),
                ACQUIRE_TIMEOUT.as_secs()
            )),
            e => errors.map(&format!("connecting to {}", errors.redacted_url()), &e),
        })?;
    if let Err(error) = MIGRATOR.run(&pool).await {
        pool.close().await;
        return Err(errors.migration(error));
    }
    Ok(pool)
}

/// Creates the SQLite file's directory, then opens the file once with a typed connection.
///
/// The pool applies its per-connection settings in a hook whose failures sqlx retries until the
/// acquire timeout, which would turn "file is not a database" into a vague timeout; this first
/// connection reports SQLite's own error at once, and switches the file to write-ahead logging,
/// which SQLite remembers in the file itself.
async fn prepare_sqlite_file(url: &str, errors: &ErrorMapper) -> Result<()> {
    if is_in_memory(url) {
        return Err(Error::invalid(
            "an in-memory SQLite database would be emptied whenever its connection is replaced; \
             use a file (sqlite://path/capibara.db?mode=rwc)",
        ));
    }
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| errors.map("reading the database URL", &e))?
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(SQLITE_BUSY_TIMEOUT);
    let path = options.get_filename().to_path_buf();
    if let Some(directory) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(directory).await.map_err(|e| {
            Error::unavailable(format!("SQLite: cannot create the directory {}: {e}", directory.display()))
        })?;
    }
    let action = format!("opening {}", path.display());
    let connection = options.connect().await.map_err(|e| errors.map(&action, &e))?;
    connection.close().await.map_err(|e| errors.map(&action, &e))
}

/// Whether a SQLite URL names a database that lives only in memory.
fn is_in_memory(url: &str) -> bool {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    path.is_empty() || path == ":memory:" || query.split('&').any(|pair| pair == "mode=memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_sqlite_connection_has_the_durability_settings() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("a/b/capibara.db").display());
        let errors = ErrorMapper::new(DatabaseEngine::Sqlite, &url);
        let pool = open_pool(&url, DatabaseEngine::Sqlite, 3, &errors).await.unwrap();
        // Hold three connections at once so the checks cover more than the first one.
        let mut connections = Vec::new();
        for _ in 0..3 {
            connections.push(pool.acquire().await.unwrap());
        }
        for connection in &mut connections {
            let journal: String =
                sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut **connection).await.unwrap();
            let foreign_keys: i64 =
                sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(&mut **connection).await.unwrap();
            let synchronous: i64 =
                sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut **connection).await.unwrap();
            let busy_ms: i64 =
                sqlx::query_scalar("PRAGMA busy_timeout").fetch_one(&mut **connection).await.unwrap();
            // synchronous 1 is NORMAL.
            assert_eq!((journal.as_str(), foreign_keys, synchronous, busy_ms), ("wal", 1, 1, 5000));
        }
        drop(connections);
        pool.close().await;
    }

    #[test]
    fn in_memory_urls_are_recognised() {
        assert!(is_in_memory("sqlite::memory:"));
        assert!(is_in_memory("sqlite://:memory:"));
        assert!(is_in_memory("sqlite://shared?mode=memory&cache=shared"));
        assert!(is_in_memory("sqlite://"));
        assert!(!is_in_memory("sqlite://data/capibara.db?mode=rwc"));
        assert!(!is_in_memory("sqlite:///tmp/x/capibara.db"));
    }
}
