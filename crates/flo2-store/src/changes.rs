//! Change notices: how the data plane's in-memory caches learn that the control plane changed
//! something they hold.
//!
//! Every write that a cached object depends on appends a row to `change_log` in the same
//! transaction. Subscribers in the same process are told synchronously after commit (so in
//! `flo2 serve` a revoked key stops working before the revoke call returns); gateways in other
//! processes poll the log by sequence number ([`Store::changes_since`]).

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use flo2_core::OrgId;

use crate::pool::on_pool;
use crate::types::{DbTime, DbUuid};
use crate::{Store, StoreError};

/// What changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// A gateway key was created or revoked; `key` is the key's hash in hex.
    GatewayKey,
    /// Something in an organization's gateway configuration changed (credentials, teams,
    /// prices, routes); `key` is the organization id.
    OrgConfig,
}

impl ChangeKind {
    fn as_str(self) -> &'static str {
        match self {
            ChangeKind::GatewayKey => "gateway_key",
            ChangeKind::OrgConfig => "org_config",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "gateway_key" => Some(ChangeKind::GatewayKey),
            "org_config" => Some(ChangeKind::OrgConfig),
            _ => None,
        }
    }
}

/// One change notice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Position in the log; 0 for a notice not yet written.
    pub seq: i64,
    /// The organization it concerns.
    pub org: Option<OrgId>,
    /// What changed.
    pub kind: ChangeKind,
    /// Which object (see [`ChangeKind`]).
    pub key: String,
    /// When it was written.
    pub at: DateTime<Utc>,
}

impl Change {
    pub(crate) fn new(org: OrgId, kind: ChangeKind, key: impl Into<String>) -> Self {
        Self {
            seq: 0,
            org: Some(org),
            kind,
            key: key.into(),
            at: Utc::now(),
        }
    }

    pub(crate) fn org_config(org: OrgId) -> Self {
        Self::new(org, ChangeKind::OrgConfig, org.to_string())
    }

    pub(crate) fn gateway_key(org: OrgId, key_hash: &[u8]) -> Self {
        let hex: String = key_hash.iter().map(|b| format!("{b:02x}")).collect();
        Self::new(org, ChangeKind::GatewayKey, hex)
    }
}

type Subscriber = Arc<dyn Fn(&Change) + Send + Sync>;

/// In-process fan-out of committed changes.
#[derive(Default)]
pub(crate) struct ChangeBus {
    subscribers: RwLock<Vec<Subscriber>>,
}

impl ChangeBus {
    pub(crate) fn publish(&self, change: &Change) {
        let subscribers = match self.subscribers.read() {
            Ok(s) => s.clone(),
            // A subscriber panicked while registering; the list itself is still sound.
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        for subscriber in subscribers {
            subscriber(change);
        }
    }
}

/// Appends a change notice inside an open transaction `$tx` (either driver); evaluates to the
/// notice with its sequence number, which is what gets published after commit (so a process's
/// change watcher can tell the notices it already applied from other processes' ones).
macro_rules! record_change {
    ($tx:expr, $change:expr) => {{
        let change: &$crate::changes::Change = $change;
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO change_log (org_id, kind, key, created_at) VALUES ($1, $2, $3, $4) RETURNING seq",
        )
        .bind(change.org.map($crate::types::DbUuid::from))
        .bind(change.kind_str())
        .bind(&change.key)
        .bind($crate::types::DbTime::from(change.at))
        .fetch_one(&mut *$tx)
        .await
        .map(|seq| $crate::changes::Change { seq, ..change.clone() })
    }};
}
pub(crate) use record_change;

/// Runs `$body` in a transaction (`$tx`, either driver), appends `$change` to the change log in
/// the same transaction, commits, and only then tells in-process subscribers. Every write that a
/// data-plane cache depends on goes through here, so no notice is published for a write that
/// rolled back and none is forgotten. `return Err(..)` inside the body rolls back.
macro_rules! write_with_change {
    ($store:expr, $change:expr, $tx:ident => $body:block) => {{
        let change: &$crate::changes::Change = $change;
        let (out, recorded) = $crate::pool::on_pool!(&$store.pool, p => {
            let mut $tx = $crate::pool::BeginWrite::begin_write(p).await?;
            let out = $body;
            let recorded = $crate::changes::record_change!($tx, change)?;
            $tx.commit().await?;
            (out, recorded)
        });
        $store.publish(&recorded);
        out
    }};
}
pub(crate) use write_with_change;

impl Change {
    pub(crate) fn kind_str(&self) -> &'static str {
        self.kind.as_str()
    }
}

#[derive(sqlx::FromRow)]
struct ChangeRow {
    seq: i64,
    org_id: Option<DbUuid>,
    kind: String,
    key: String,
    created_at: DbTime,
}

impl Store {
    /// Registers a callback run after every committed change made through this store.
    pub fn subscribe(&self, callback: impl Fn(&Change) + Send + Sync + 'static) {
        let mut subscribers = match self.bus.subscribers.write() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        subscribers.push(Arc::new(callback));
    }

    pub(crate) fn publish(&self, change: &Change) {
        self.bus.publish(change);
    }

    /// Up to `limit` notices with a sequence number above `after`, oldest first.
    pub async fn changes_since(&self, after: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
        let rows: Vec<ChangeRow> = on_pool!(&self.pool, p => sqlx::query_as(
            "SELECT seq, org_id, kind, key, created_at FROM change_log WHERE seq > $1 ORDER BY seq LIMIT $2"
        )
        .bind(after)
        .bind(limit)
        .fetch_all(p)
        .await)?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(Change {
                    seq: r.seq,
                    org: r.org_id.map(OrgId::from),
                    kind: ChangeKind::parse(&r.kind)?,
                    key: r.key,
                    at: r.created_at.0,
                })
            })
            .collect())
    }

    /// The highest sequence number written so far (0 for an empty log).
    pub async fn latest_change_seq(&self) -> Result<i64, StoreError> {
        let seq: Option<i64> = on_pool!(&self.pool, p =>
            sqlx::query_scalar("SELECT MAX(seq) FROM change_log").fetch_one(p).await)?;
        Ok(seq.unwrap_or(0))
    }
}
