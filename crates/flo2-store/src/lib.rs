//! flo2's persistence on SQLite and PostgreSQL.
//!
//! Each query is written once, in SQL both dialects accept (`$n` placeholders), and runs through
//! the native driver of the connected database (see `pool.rs`). Every repository function that
//! touches tenant data takes the [`OrgId`](flo2_core::OrgId) first, so scoping is never forgotten.

#![allow(clippy::missing_errors_doc)]

mod audit;
mod changes;
mod credentials;
mod error;
mod experiments;
mod gateway_keys;
mod invites;
mod orgs;
mod pool;
mod prices;
mod reports;
mod routes;
mod row_by_row;
mod sessions;
mod teams;
pub mod types;
mod usage;
mod users;

pub use audit::{AuditEntry, AuditFilter, NewAuditEntry};
pub use changes::{Change, ChangeKind};
pub use credentials::{Credential, CredentialUpdate, NewCredential};
pub use error::StoreError;
pub use experiments::Experiment;
pub use gateway_keys::{GatewayKey, NewGatewayKey};
pub use invites::{Invite, NewInvite};
pub use orgs::{Membership, NewOrganization, Organization, StoredDataKey};
pub use pool::{Dialect, PoolOptions, SQLITE_MAX_CONNECTIONS};
pub use prices::PriceOverride;
pub use reports::{ExportRow, GroupBy, UsageFilter, UsageGroup, UsageTotals};
pub use routes::Route;
pub use row_by_row::{Loaded, SkippedEntry};
pub use sessions::Session;
pub use teams::Team;
pub use usage::UsageRecord;
pub use users::{Member, NewUser, User};

use std::sync::Arc;

/// The database handle shared by both planes. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: pool::Pool,
    bus: Arc<changes::ChangeBus>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dialect", &self.dialect())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects to `url` (`sqlite:` or `postgres://`). SQLite files are created if missing.
    pub async fn connect(url: &str, options: &PoolOptions) -> Result<Self, StoreError> {
        Ok(Self {
            pool: pool::Pool::connect(url, options).await?,
            bus: Arc::default(),
        })
    }

    /// Which database this store talks to.
    pub fn dialect(&self) -> Dialect {
        self.pool.dialect()
    }

    /// Applies pending migrations. Safe to run from several replicas at once on PostgreSQL
    /// (sqlx takes an advisory lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.pool.migrate().await
    }

    /// Ok when the database answers and every embedded migration has been applied.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.pool.ready().await
    }

    /// Closes every connection; used at shutdown.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
