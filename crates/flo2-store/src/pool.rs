//! The connection pool for whichever database the URL names, and the `on_pool!` macro that
//! runs one query text through either native driver.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::StoreError;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

/// Which SQL dialect the store speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// The embedded default.
    Sqlite,
    /// The production store shared by many gateway replicas.
    Postgres,
}

/// Pool sizing.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// How long a query waits for a free connection before failing.
    pub acquire_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Most connections a SQLite pool opens, whatever [`PoolOptions::max_connections`] says.
/// SQLite writes one transaction at a time, and each connection costs a thread (sqlx drives
/// every SQLite connection from its own), a page cache and a statement cache of its own. The
/// pool hands out its idle connections in turn, so with 16 of them the usage writer's batches
/// went round all 16 threads, and each connection prepared every insert statement size for
/// itself: 14 threads woke for usage at 1,000 requests per second, 68.6 MiB peak RSS over a
/// benchmark run against 45.4 MiB on PostgreSQL (2026-12-02).
pub const SQLITE_MAX_CONNECTIONS: u32 = 4;

#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Opening a transaction that will write. On SQLite a plain `BEGIN` is deferred: it reads
/// under a snapshot and fails at once with SQLITE_BUSY when it later tries to write after
/// another connection committed, without waiting out the busy timeout. `BEGIN IMMEDIATE` takes
/// the write lock up front, so concurrent writers queue (up to the busy timeout) instead of
/// failing. PostgreSQL's row locking needs nothing special.
pub(crate) trait BeginWrite {
    type Db: sqlx::Database;

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>;
}

impl BeginWrite for SqlitePool {
    type Db = sqlx::Sqlite;

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for PgPool {
    type Db = sqlx::Postgres;

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error> {
        self.begin().await
    }
}

/// Runs `$body` with `$p` bound to the native pool of either database. The body is compiled
/// once per driver, so the same query text and binds are type-checked against both.
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            $crate::pool::Pool::Sqlite($p) => $body,
            $crate::pool::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Creates a new SQLite database file readable by flo2's user only, before SQLite creates it
/// with the process umask (0644, usually): it holds every organization's data. SQLite gives the
/// `-wal` and `-shm` files the database file's mode, so they are private too. An existing file
/// is left as it is; an in-memory database has no file.
async fn create_private_file(path: &std::path::Path, url: &str) {
    if url.contains(":memory:") || url.contains("mode=memory") || path.as_os_str().is_empty() {
        return;
    }
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    // An existing file is fine; a missing directory or a read-only disk SQLite reports in its
    // own words when it opens the file.
    let _ = options.open(path).await;
}

impl Pool {
    pub(crate) async fn connect(url: &str, options: &PoolOptions) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.acquire_timeout)
                .connect(url)
                .await?;
            Ok(Pool::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            let connect = SqliteConnectOptions::from_str(url)?;
            create_private_file(connect.get_filename(), url).await;
            let connect = connect
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(options.max_connections.min(SQLITE_MAX_CONNECTIONS))
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect)
                .await?;
            Ok(Pool::Sqlite(pool))
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }

    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::Postgres(_) => Dialect::Postgres,
        }
    }

    fn migrator(&self) -> &'static Migrator {
        match self {
            Pool::Sqlite(_) => &SQLITE_MIGRATIONS,
            Pool::Postgres(_) => &POSTGRES_MIGRATIONS,
        }
    }

    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = self.migrator();
        on_pool!(self, p => migrator.run(p).await)?;
        Ok(())
    }

    pub(crate) async fn ready(&self) -> Result<(), StoreError> {
        let latest = self.migrator().iter().map(|m| m.version).max().unwrap_or(0);
        let applied: Option<i64> = on_pool!(self, p => sqlx::query_scalar(
            "SELECT MAX(version) FROM _sqlx_migrations WHERE success = TRUE"
        )
        .fetch_one(p)
        .await)
        .map_err(|err| {
            if StoreError::is_missing_table(&err) {
                // No migrations table at all: nothing applied yet.
                StoreError::PendingMigrations
            } else {
                // Anything else (the database unreachable, above all) is not a schema problem.
                StoreError::from(err)
            }
        })?;
        if applied.unwrap_or(0) < latest {
            return Err(StoreError::PendingMigrations);
        }
        Ok(())
    }

    pub(crate) async fn close(&self) {
        on_pool!(self, p => p.close().await);
    }
}
