//! Throwaway databases on the real PostgreSQL server, for every crate's tests.
//!
//! ```no_run
//! # async fn run() {
//! use capibara_testkit::postgres::TestDatabase;
//!
//! let db = TestDatabase::create().await; // a fresh, empty `capibara_test_…` database
//! let url = db.url();                    // postgres://postgres@127.0.0.1:5432/capibara_test_…
//! # let _ = url;
//! db.drop_database().await;
//! # }
//! ```
//!
//! The server is `postgres://postgres@127.0.0.1:5432/postgres` unless `CAPIBARA_TEST_POSTGRES_URL`
//! names another (any database the user may connect to; new databases are created next to it).
//! When a local server does not answer, it is started once per process with `pg_ctlcluster`; when
//! that fails the test panics saying what is missing — a test never skips silently. Databases left
//! behind by crashed runs are dropped once they are an hour old.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use capibara_core::config::redact_password;
use sqlx::{Connection, Executor, PgConnection};

/// The server tests use unless [`URL_VARIABLE`] says otherwise.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Environment variable naming another server (`postgres://user:password@host:port/database`).
pub const URL_VARIABLE: &str = "CAPIBARA_TEST_POSTGRES_URL";

/// Every test database's name starts with this, followed by its creation time (Unix seconds).
pub const NAME_PREFIX: &str = "capibara_test_";

/// Test databases older than this are leftovers of crashed runs.
const LEFTOVER_AGE: Duration = Duration::from_secs(3600);

/// How long to wait for a server that was just started to accept connections.
const STARTUP_WAIT: Duration = Duration::from_secs(20);

/// How to start the local server, for messages.
const START_COMMAND: &str = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";

/// A database created for one test. Call [`TestDatabase::drop_database`] at the end of the test;
/// one still alive when it goes out of scope (a test that panicked) is dropped from a helper thread.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    server_url: String,
    dropped: bool,
}

impl TestDatabase {
    /// Creates a fresh, empty database on the test server (starting a local server if needed).
    ///
    /// # Panics
    /// When the server cannot be reached or started, or refuses to create the database.
    pub async fn create() -> Self {
        let server_url = std::env::var(URL_VARIABLE).unwrap_or_else(|_| DEFAULT_URL.to_owned());
        let mut server = connect_to_server(&server_url).await;
        drop_leftovers(&mut server).await;
        let created = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let name = format!("{NAME_PREFIX}{created}_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        server.execute(format!(r#"CREATE DATABASE "{name}""#).as_str()).await.unwrap_or_else(|e| {
            panic!("cannot create the test database {name} on {}: {e}", redact_password(&server_url))
        });
        let _ = server.close().await;
        Self { url: with_database(&server_url, &name), name, server_url, dropped: false }
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database, closing any connection still open to it.
    ///
    /// # Panics
    /// When the server cannot be reached or refuses.
    pub async fn drop_database(mut self) {
        self.dropped = true;
        drop_named(&self.server_url, &self.name).await;
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Drop cannot await, and the test's runtime may be unwinding: use a runtime of our own.
        let (server_url, name) = (self.server_url.clone(), self.name.clone());
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(drop_named(&server_url, &name));
            Ok::<_, std::io::Error>(())
        })
        .join();
        if !matches!(outcome, Ok(Ok(()))) {
            eprintln!(
                "warning: the test database {} was not dropped; runs an hour from now will drop it",
                self.name
            );
        }
    }
}

async fn drop_named(server_url: &str, name: &str) {
    let mut server = connect_to_server(server_url).await;
    server.execute(drop_statement(name).as_str()).await.unwrap_or_else(|e| {
        panic!("cannot drop the test database {name} on {}: {e}", redact_password(server_url))
    });
    let _ = server.close().await;
}

/// Connects to the server, starting a local one once per process if it does not answer.
async fn connect_to_server(url: &str) -> PgConnection {
    let first_error = match PgConnection::connect(url).await {
        Ok(connection) => return connection,
        Err(error) if is_not_running(&error) => error,
        Err(error) => panic!(
            "the test PostgreSQL at {} refused the connection: {error}. Set {URL_VARIABLE} to a server \
             where this user may create databases.",
            redact_password(url)
        ),
    };
    if !is_local(url) {
        panic!(
            "the test PostgreSQL at {} is not reachable: {first_error}. Start it, or set {URL_VARIABLE} \
             to a reachable server.",
            redact_password(url)
        );
    }
    let started = tokio::task::spawn_blocking(|| START.get_or_init(start_local_server).clone())
        .await
        .unwrap_or_else(|e| Err(format!("the start task failed: {e}")));
    if let Err(why) = started {
        panic!(
            "PostgreSQL is not running at {} ({first_error}) and could not be started: {why}. \
             Install PostgreSQL and start it with `{START_COMMAND}`, or set {URL_VARIABLE}.",
            redact_password(url)
        );
    }
    let deadline = Instant::now() + STARTUP_WAIT;
    loop {
        match PgConnection::connect(url).await {
            Ok(connection) => return connection,
            Err(error) if is_not_running(&error) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!(
                "PostgreSQL was started with `{START_COMMAND}` but {} still does not accept \
                 connections: {error}",
                redact_password(url)
            ),
        }
    }
}

/// The outcome of the one attempt per process to start the local server.
static START: OnceLock<Result<(), String>> = OnceLock::new();

/// `pg_ctlcluster --skip-systemctl-redirect <version> main start` for the installed version.
fn start_local_server() -> Result<(), String> {
    let versions = std::fs::read_dir("/etc/postgresql")
        .map_err(|e| format!("no PostgreSQL cluster is configured (/etc/postgresql: {e})"))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .collect::<Vec<_>>();
    let version = versions.iter().max().ok_or("/etc/postgresql lists no PostgreSQL version")?;
    let output = std::process::Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", version, "main", "start"])
        .output()
        .map_err(|e| format!("cannot run pg_ctlcluster: {e}"))?;
    let said =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    // Another process may have started it meanwhile; that is as good as starting it.
    if output.status.success() || said.contains("already running") {
        Ok(())
    } else {
        Err(format!("pg_ctlcluster {version} main start failed: {}", said.trim()))
    }
}

/// Whether the error means no server is listening (or it is still starting up).
fn is_not_running(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(database) => database.code().as_deref() == Some("57P03"),
        _ => false,
    }
}

/// Whether the URL names a server on this machine, the only kind this module may start.
fn is_local(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else { return false };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = host.rsplit_once(':').filter(|(_, port)| port.parse::<u16>().is_ok()).map_or(host, |(h, _)| h);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "")
}

/// Drops test databases whose creation time in their name is more than an hour ago.
async fn drop_leftovers(server: &mut PgConnection) {
    let names: Vec<String> =
        match sqlx::query_scalar(r"SELECT datname FROM pg_database WHERE datname LIKE 'capibara\_test\_%'")
            .fetch_all(&mut *server)
            .await
        {
            Ok(names) => names,
            Err(error) => {
                eprintln!("warning: cannot list leftover test databases: {error}");
                return;
            }
        };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    for name in names.iter().filter(|name| is_leftover(name, now)) {
        if let Err(error) = server.execute(drop_statement(name).as_str()).await {
            eprintln!("warning: cannot drop the leftover test database {name}: {error}");
        }
    }
}

/// Whether `name` is a test database (`capibara_test_<secs>_<hex>`) created over an hour before `now`.
fn is_leftover(name: &str, now: u64) -> bool {
    let Some((created, suffix)) = name.strip_prefix(NAME_PREFIX).and_then(|rest| rest.split_once('_')) else {
        return false;
    };
    let well_formed = !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_hexdigit());
    match created.parse::<u64>() {
        Ok(created) => well_formed && now.saturating_sub(created) > LEFTOVER_AGE.as_secs(),
        Err(_) => false,
    }
}

/// `WITH (FORCE)` ends the connections a test's pools left open.
fn drop_statement(name: &str) -> String {
    format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#)
}

/// The same server URL pointing at another database.
fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (before_query, query) = rest.split_once('?').map_or((rest, None), |(r, q)| (r, Some(q)));
    let authority = before_query.split_once('/').map_or(before_query, |(authority, _)| authority);
    match query {
        Some(query) => format!("{scheme}://{authority}/{database}?{query}"),
        None => format!("{scheme}://{authority}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_point_at_the_new_database() {
        assert_eq!(
            with_database(DEFAULT_URL, "capibara_test_1_ab"),
            "postgres://postgres@127.0.0.1:5432/capibara_test_1_ab"
        );
        assert_eq!(
            with_database("postgresql://u:p@db?sslmode=disable", "x"),
            "postgresql://u:p@db/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@db:5433/other?a=b", "x"), "postgres://u@db:5433/x?a=b");
    }

    #[test]
    fn only_old_well_formed_test_databases_are_leftovers() {
        let now = 10_000;
        assert!(is_leftover("capibara_test_6000_0123abcd", now));
        assert!(!is_leftover("capibara_test_9000_0123abcd", now), "younger than an hour");
        assert!(!is_leftover("capibara_test_6000_", now));
        assert!(!is_leftover("capibara_test_6000_x\"; DROP", now));
        assert!(!is_leftover("capibara_production", now));
    }

    #[test]
    fn starting_the_running_local_server_is_harmless() {
        // Here the server is already running: pg_ctlcluster says so, and that counts as started.
        assert_eq!(start_local_server(), Ok(()));
    }

    #[test]
    fn only_local_servers_are_started() {
        assert!(is_local(DEFAULT_URL));
        assert!(is_local("postgres://u:p@localhost/x"));
        assert!(is_local("postgres://u@[::1]:5432/x"));
        assert!(!is_local("postgres://u:p@db.example.com:5432/x"));
    }
}
