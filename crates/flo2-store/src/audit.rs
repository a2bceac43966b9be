//! The audit log: what changed in an organization's control plane, who changed it, when and from
//! which address. Entries are only ever appended; they are read newest first, a page at a time.

use chrono::{DateTime, Utc};
use flo2_core::{OrgId, UserId};
use uuid::Uuid;

use crate::pool::on_pool;
use crate::types::{DbTime, DbUuid};
use crate::{Store, StoreError};

/// An entry to append.
#[derive(Clone, Debug)]
pub struct NewAuditEntry {
    /// Who made the change (`None`: nobody signed in, e.g. a throttled login).
    pub actor: Option<UserId>,
    /// What happened: a stable dotted name such as `api_key.revoked`.
    pub action: String,
    /// The kind of object it happened to (`api_key`, `member`, ...).
    pub target_type: String,
    /// That object's id (or name, for routes), if it has one.
    pub target_id: Option<String>,
    /// The client address the change came from.
    pub client_address: Option<String>,
    /// Anything else needed to understand the change; never a secret.
    pub details: serde_json::Value,
}

/// A stored entry.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    /// Position in the organization's log (insertion order); the pagination cursor.
    pub seq: i64,
    /// Its id.
    pub id: Uuid,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// Who made the change.
    pub actor_id: Option<UserId>,
    /// The actor's email when the change was made.
    pub actor_email: Option<String>,
    /// What happened.
    pub action: String,
    /// The kind of object it happened to.
    pub target_type: String,
    /// That object's id.
    pub target_id: Option<String>,
    /// The client address the change came from.
    pub client_address: Option<String>,
    /// Details (a JSON object).
    pub details: serde_json::Value,
}

/// Which entries to read.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Entries at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Entries before this time.
    pub to: Option<DateTime<Utc>>,
    /// Entries made by this user.
    pub actor: Option<UserId>,
    /// Entries with this action.
    pub action: Option<String>,
    /// Entries older than this position (the previous page's last `seq`).
    pub before_seq: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    seq: i64,
    id: DbUuid,
    at: DbTime,
    actor_id: Option<DbUuid>,
    actor_email: Option<String>,
    action: String,
    target_type: String,
    target_id: Option<String>,
    client_address: Option<String>,
    details: String,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        AuditEntry {
            seq: r.seq,
            id: r.id.0,
            at: r.at.0,
            actor_id: r.actor_id.map(UserId::from),
            actor_email: r.actor_email,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            client_address: r.client_address,
            // Written by `record_audit` from a `Value`, so it parses; a hand-edited row shows
            // as its text rather than failing the whole page.
            details: serde_json::from_str(&r.details)
                .unwrap_or(serde_json::Value::String(r.details)),
        }
    }
}

/// Appends `$entry` to organization `$org`'s audit log through `$executor` (a pool, or an open
/// transaction `&mut *tx` so the entry commits or rolls back with the change it records). The
/// actor's current email is copied into it.
macro_rules! insert_audit {
    ($executor:expr, $org:expr, $entry:expr) => {{
        let entry: &$crate::audit::NewAuditEntry = $entry;
        sqlx::query(
            "INSERT INTO audit_log (id, org_id, at, actor_id, actor_email, action, target_type, target_id, client_address, details) \
             VALUES ($1, $2, $3, $4, (SELECT email FROM users WHERE id = $4), $5, $6, $7, $8, $9)",
        )
        .bind($crate::types::DbUuid(uuid::Uuid::now_v7()))
        .bind($crate::types::DbUuid::from($org))
        .bind($crate::types::DbTime::now())
        .bind(entry.actor.map($crate::types::DbUuid::from))
        .bind(&entry.action)
        .bind(&entry.target_type)
        .bind(&entry.target_id)
        .bind(&entry.client_address)
        .bind(entry.details.to_string())
        .execute($executor)
        .await
        .map(|_| ())
    }};
}
pub(crate) use insert_audit;

impl Store {
    /// Appends an entry to `org`'s audit log, on its own (for changes whose write does not take
    /// an entry to commit with it).
    pub async fn record_audit(&self, org: OrgId, entry: &NewAuditEntry) -> Result<(), StoreError> {
        on_pool!(&self.pool, p => insert_audit!(p, org, entry))?;
        Ok(())
    }

    /// Up to `limit` of `org`'s entries matching `filter`, newest first.
    pub async fn audit_log(
        &self,
        org: OrgId,
        filter: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<AuditRow> = on_pool!(&self.pool, p => sqlx::query_as(
            "SELECT seq, id, at, actor_id, actor_email, action, target_type, target_id, client_address, details \
             FROM audit_log WHERE org_id = $1 \
             AND ($2 IS NULL OR at >= $2) AND ($3 IS NULL OR at < $3) \
             AND ($4 IS NULL OR actor_id = $4) AND ($5 IS NULL OR action = $5) \
             AND ($6 IS NULL OR seq < $6) \
             ORDER BY seq DESC LIMIT $7",
        )
        .bind(DbUuid::from(org))
        .bind(filter.from.map(DbTime::from))
        .bind(filter.to.map(DbTime::from))
        .bind(filter.actor.map(DbUuid::from))
        .bind(filter.action.as_deref())
        .bind(filter.before_seq)
        .bind(limit)
        .fetch_all(p)
        .await)?;
        Ok(rows.into_iter().map(AuditEntry::from).collect())
    }
}
