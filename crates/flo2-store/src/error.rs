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
    /// True for errors that mean the database is unreachable or overloaded rather than that the
    /// request was wrong; callers answer 503 for these.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Database(
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed
            )
        )
    }
}
