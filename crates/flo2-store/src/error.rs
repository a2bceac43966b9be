//! The store's error type.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No row with that id in that organization.
    #[error("not found")]
    NotFound,
    /// A unique constraint rejected the write (duplicate name, email, ...).
    #[error("conflicts with an existing record")]
    Conflict,
    /// The write referred to a row that does not exist (or not in this organization).
    #[error("refers to a record that does not exist")]
    InvalidReference,
    /// The change would leave the organization without an owner.
    #[error("an organization must keep at least one owner")]
    LastOwner,
    /// The database URL is neither `sqlite:` nor `postgres://`.
    #[error("unsupported database URL: expected sqlite:PATH or postgres://...")]
    UnsupportedUrl,
    /// The database holds fewer applied migrations than this binary embeds.
    #[error("database schema is behind this binary: run `flo2 migrate`")]
    PendingMigrations,
    /// A stored value could not be read back (bad enum text, bad key id, ...).
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The same read failed moments ago and is not retried yet (the reason it failed).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Any other database error (connection, I/O, timeout).
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::InvalidReference
            }
            _ => StoreError::Database(err),
        }
    }
}

impl StoreError {
    /// True when the database refused the data itself (a constraint, a value it cannot store),
    /// so writing the same rows again fails again; false for outages, which a retry outlasts.
    pub fn is_refusal(&self) -> bool {
        match self {
            StoreError::Conflict | StoreError::InvalidReference => true,
            StoreError::Database(sqlx::Error::Database(db)) => {
                use sqlx::error::ErrorKind;
                if !matches!(db.kind(), ErrorKind::Other) {
                    return true; // unique, foreign key, not-null or check violation
                }
                if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                    // SQLSTATE class 22 (data exception) and 23 (integrity constraint).
                    return pg.code().starts_with("22") || pg.code().starts_with("23");
                }
                // SQLite result codes: the primary code is the low byte of the extended one.
                // 18 too big, 19 constraint (a trigger's RAISE too), 20 type mismatch, 25 range.
                db.code()
                    .and_then(|code| code.parse::<i64>().ok())
                    .is_some_and(|code| matches!(code & 0xff, 18 | 19 | 20 | 25))
            }
            _ => false,
        }
    }

    /// True for errors that mean the database is unreachable or overloaded rather than that the
    /// request was wrong; callers answer 503 for these. Besides the connection errors (I/O, TLS,
    /// pool timeout, closed pool, a crashed SQLite worker), the database's own codes for the
    /// same: PostgreSQL's connection exceptions (08), insufficient resources (53), operator
    /// intervention (57: shutdown, terminated sessions), a database that no longer exists
    /// (3D000) or refuses connections (55000), lock timeouts (55P03); SQLite's busy and locked
    /// (past the busy timeout), read-only, I/O error, disk full and cannot-open.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Database(err) => match err {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(db) => {
                    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                        let code = pg.code();
                        return ["08", "53", "57"].iter().any(|c| code.starts_with(c))
                            || matches!(code, "3D000" | "55000" | "55P03");
                    }
                    // SQLite: the primary result code is the low byte of the extended one.
                    // 5 busy, 6 locked, 8 read-only, 10 I/O error, 13 full, 14 cannot open.
                    use sqlx::error::DatabaseError as _;
                    db.try_downcast_ref::<sqlx::sqlite::SqliteError>()
                        .and_then(|e| e.code())
                        .and_then(|code| code.parse::<i64>().ok())
                        .is_some_and(|code| matches!(code & 0xff, 5 | 6 | 8 | 10 | 13 | 14))
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// True when a query failed because a table does not exist (the schema was never
    /// migrated), as opposed to the database being unreachable.
    pub fn is_missing_table(err: &sqlx::Error) -> bool {
        let sqlx::Error::Database(db) = err else {
            return false;
        };
        if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
            return pg.code() == "42P01"; // undefined_table
        }
        // SQLite reports it as a generic error (code 1) with this message.
        db.message().starts_with("no such table")
    }
}
