//! How database failures become [`Error`] variants, classified by what a caller can do about them:
//! `Unavailable` when the database cannot be reached or is busy (retrying may work), `Internal` with
//! the cause for everything else. Messages name the engine and never the password.

use capibara_core::Error;
use capibara_core::config::redact_password;
use sqlx::migrate::MigrateError;

use super::DatabaseEngine;

/// PostgreSQL SQLSTATEs that mean "not reachable right now" rather than "this statement is wrong":
/// shutdown in progress, too many connections, unknown database or role, failed authentication,
/// serialization failure and deadlock (both resolved by retrying).
const POSTGRES_TRANSIENT: [&str; 9] =
    ["57P01", "57P02", "57P03", "53300", "3D000", "28000", "28P01", "40001", "40P01"];

/// SQLite primary result codes: busy, locked, cannot open.
const SQLITE_TRANSIENT: [i64; 3] = [5, 6, 14];
/// SQLite primary result codes: the file is damaged or is not a database at all.
const SQLITE_CORRUPT: [i64; 2] = [11, 26];

/// Turns sqlx errors into [`Error`]s for one store.
#[derive(Clone)]
pub(super) struct ErrorMapper {
    engine: DatabaseEngine,
    /// The URL with its password replaced, for messages about connecting.
    redacted_url: String,
    /// The password itself, scrubbed from every message in case a driver ever echoes it.
    password: Option<String>,
}

enum Failure {
    Unreachable,
    Corrupt,
    BadConfiguration,
    Other,
}

impl ErrorMapper {
    pub(super) fn new(engine: DatabaseEngine, url: &str) -> Self {
        Self { engine, redacted_url: redact_password(url), password: password_of(url) }
    }

    /// The URL with its password replaced by `***`.
    pub(super) fn redacted_url(&self) -> &str {
        &self.redacted_url
    }

    /// Maps a failure that happened while doing `action` ("reading conversation …").
    pub(super) fn map(&self, action: &str, error: &sqlx::Error) -> Error {
        let message = self.scrub(format!("{}: {action}: {error}", self.engine));
        match self.classify(error) {
            Failure::Unreachable => Error::Unavailable(message),
            Failure::BadConfiguration => Error::InvalidInput(message),
            Failure::Corrupt => Error::Internal(format!(
                "{message} (the file is damaged or is not a SQLite database; it was left as it is — \
                 restore it from a backup or move it away)"
            )),
            Failure::Other => Error::Internal(message),
        }
    }

    /// Maps a failure while bringing the schema up to date. Each migration runs in a transaction,
    /// so the database is left as it was.
    pub(super) fn migration(&self, error: MigrateError) -> Error {
        match error {
            MigrateError::Execute(error) | MigrateError::ExecuteMigration(error, _) => {
                match self.map("applying migrations", &error) {
                    Error::Internal(message) => {
                        Error::Internal(format!("{message} (the database was left as it was)"))
                    }
                    mapped => mapped,
                }
            }
            other => Error::Internal(self.scrub(format!(
                "{}: the database at {} cannot be migrated: {other} (it was left as it was)",
                self.engine, self.redacted_url
            ))),
        }
    }

    fn classify(&self, error: &sqlx::Error) -> Failure {
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Failure::Unreachable,
            sqlx::Error::Configuration(_) => Failure::BadConfiguration,
            sqlx::Error::Database(database) => {
                let code = database.code().map(|c| c.into_owned()).unwrap_or_default();
                match self.engine {
                    DatabaseEngine::Postgres
                        if code.starts_with("08") || POSTGRES_TRANSIENT.contains(&code.as_str()) =>
                    {
                        Failure::Unreachable
                    }
                    DatabaseEngine::Postgres => Failure::Other,
                    DatabaseEngine::Sqlite => {
                        // Extended result codes carry the primary code in their low byte.
                        let primary = code.parse::<i64>().map(|c| c & 0xff).unwrap_or(-1);
                        if SQLITE_CORRUPT.contains(&primary) {
                            Failure::Corrupt
                        } else if SQLITE_TRANSIENT.contains(&primary) {
                            Failure::Unreachable
                        } else {
                            Failure::Other
                        }
                    }
                }
            }
            _ => Failure::Other,
        }
    }

    fn scrub(&self, message: String) -> String {
        match &self.password {
            Some(password) => message.replace(password.as_str(), "***"),
            None => message,
        }
    }
}

/// The password of a `scheme://user:password@host/…` URL, when it has a non-empty one.
fn password_of(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let (credentials, _) = authority.rsplit_once('@')?;
    let (_, password) = credentials.split_once(':')?;
    (!password.is_empty()).then(|| password.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_found_only_where_there_is_one() {
        assert_eq!(password_of("postgres://u:s3cret@db:5432/x").as_deref(), Some("s3cret"));
        assert_eq!(password_of("postgres://u:@db/x"), None);
        assert_eq!(password_of("postgres://u@db/x"), None);
        assert_eq!(password_of("sqlite://data/c.db?mode=rwc"), None);
    }

    #[test]
    fn unreachable_servers_are_unavailable_and_never_show_the_password() {
        let errors = ErrorMapper::new(DatabaseEngine::Postgres, "postgres://u:s3cret@db/x");
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused by s3cret");
        let error = errors.map("connecting", &sqlx::Error::Io(io));
        assert_eq!(error.code(), "unavailable");
        assert!(error.to_string().contains("PostgreSQL"), "{error}");
        assert!(!error.to_string().contains("s3cret"), "{error}");
        assert_eq!(errors.redacted_url(), "postgres://u:***@db/x");
        assert_eq!(errors.map("reading", &sqlx::Error::RowNotFound).code(), "internal");
    }
}
