//! Gateway keys: stored as SHA-256 hashes, looked up by hash at use time.

use chrono::{DateTime, Utc};
use flo2_core::{GatewayKeyId, OrgId, TeamId, UserId};

use uuid::Uuid;

use crate::changes::{write_with_change, Change};
use crate::pool::{on_pool, Pool};
use crate::types::{DbTime, DbUuid};
use crate::{Store, StoreError};

/// A stored gateway key (never the key itself).
#[derive(Clone, Debug)]
pub struct GatewayKey {
    /// Its id.
    pub id: GatewayKeyId,
    /// The organization it belongs to.
    pub org_id: OrgId,
    /// The team it belongs to.
    pub team_id: TeamId,
    /// Display name.
    pub name: String,
    /// SHA-256 of the key.
    pub key_hash: Vec<u8>,
    /// Non-secret reminder, such as `flo2_Ab3d…x9Zq`.
    pub hint: String,
    /// Who created it (`None` when unknown or that user is gone).
    pub created_by: Option<UserId>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last authenticated a request (written in batches, so it can lag a little).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked; a revoked key authenticates nothing.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key to store.
#[derive(Clone, Debug)]
pub struct NewGatewayKey {
    /// Display name, unique among the organization's active keys.
    pub name: String,
    /// The team; must belong to the organization.
    pub team_id: TeamId,
    /// SHA-256 of the minted key.
    pub key_hash: Vec<u8>,
    /// Hint of the minted key.
    pub hint: String,
    /// Who created it.
    pub created_by: Option<UserId>,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: DbUuid,
    org_id: DbUuid,
    team_id: DbUuid,
    name: String,
    key_hash: Vec<u8>,
    hint: String,
    created_by: Option<DbUuid>,
    created_at: DbTime,
    last_used_at: Option<DbTime>,
    revoked_at: Option<DbTime>,
}

impl From<KeyRow> for GatewayKey {
    fn from(r: KeyRow) -> Self {
        GatewayKey {
            id: r.id.into(),
            org_id: r.org_id.into(),
            team_id: r.team_id.into(),
            name: r.name,
            key_hash: r.key_hash,
            hint: r.hint,
            created_by: r.created_by.map(UserId::from),
            created_at: r.created_at.0,
            last_used_at: r.last_used_at.map(|t| t.0),
            revoked_at: r.revoked_at.map(|t| t.0),
        }
    }
}

const COLUMNS: &str = "SELECT id, org_id, team_id, name, key_hash, hint, created_by, created_at, last_used_at, revoked_at FROM gateway_keys";

impl Store {
    /// Stores a new key. `InvalidReference` when the team is not in `org`; `Conflict` when an
    /// active key of `org` has the same name.
    pub async fn create_gateway_key(
        &self,
        org: OrgId,
        new: &NewGatewayKey,
    ) -> Result<GatewayKey, StoreError> {
        let id = GatewayKeyId::new();
        let change = Change::gateway_key(org, &new.key_hash);
        // The notice also drops any negative cache entry a gateway holds for this hash.
        write_with_change!(self, &change, tx => {
            sqlx::query(
                "INSERT INTO gateway_keys (id, org_id, team_id, name, key_hash, hint, created_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(DbUuid::from(id))
            .bind(DbUuid::from(org))
            .bind(DbUuid::from(new.team_id))
            .bind(&new.name)
            .bind(&new.key_hash)
            .bind(&new.hint)
            .bind(new.created_by.map(DbUuid::from))
            .bind(DbTime::now())
            .execute(&mut *tx)
            .await?;
        });
        self.gateway_key(org, id).await
    }

    /// `org`'s keys, newest first, revoked ones included.
    pub async fn gateway_keys(&self, org: OrgId) -> Result<Vec<GatewayKey>, StoreError> {
        let rows: Vec<KeyRow> = on_pool!(&self.pool, p => sqlx::query_as(
            &format!("{COLUMNS} WHERE org_id = $1 ORDER BY created_at DESC, id DESC")
        )
        .bind(DbUuid::from(org))
        .fetch_all(p)
        .await)?;
        Ok(rows.into_iter().map(GatewayKey::from).collect())
    }

    /// One key of `org`.
    pub async fn gateway_key(
        &self,
        org: OrgId,
        id: GatewayKeyId,
    ) -> Result<GatewayKey, StoreError> {
        let row: KeyRow = on_pool!(&self.pool, p => sqlx::query_as(
            &format!("{COLUMNS} WHERE org_id = $1 AND id = $2")
        )
        .bind(DbUuid::from(org))
        .bind(DbUuid::from(id))
        .fetch_one(p)
        .await)?;
        Ok(row.into())
    }

    /// The key with this hash, in whichever organization it is. This is the data plane's
    /// authentication lookup: the hash is the credential, and the row names the tenant.
    pub async fn gateway_key_by_hash(&self, key_hash: &[u8]) -> Result<GatewayKey, StoreError> {
        let row: KeyRow = on_pool!(&self.pool, p => sqlx::query_as(
            &format!("{COLUMNS} WHERE key_hash = $1")
        )
        .bind(key_hash)
        .fetch_one(p)
        .await)?;
        Ok(row.into())
    }

    /// Revokes a key of `org`. Revoking twice is harmless; the first time is kept.
    pub async fn revoke_gateway_key(
        &self,
        org: OrgId,
        id: GatewayKeyId,
    ) -> Result<GatewayKey, StoreError> {
        let key = self.gateway_key(org, id).await?;
        let change = Change::gateway_key(org, &key.key_hash);
        write_with_change!(self, &change, tx => {
            sqlx::query("UPDATE gateway_keys SET revoked_at = $3 WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL")
                .bind(DbUuid::from(org))
                .bind(DbUuid::from(id))
                .bind(DbTime::now())
                .execute(&mut *tx)
                .await?;
        });
        self.gateway_key(org, id).await
    }

    /// Records when keys were last used; the data plane batches these off the request path.
    pub async fn touch_gateway_keys(
        &self,
        uses: &[(GatewayKeyId, DateTime<Utc>)],
    ) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        // One statement for the whole batch: a busy replica touches thousands of keys per
        // interval, and a statement per key was thousands of round trips (PostgreSQL) or
        // worker-thread hops (SQLite) competing with live traffic.
        match &self.pool {
            Pool::Postgres(p) => {
                let ids: Vec<Uuid> = uses.iter().map(|(id, _)| id.as_uuid()).collect();
                let times: Vec<DateTime<Utc>> = uses.iter().map(|(_, at)| *at).collect();
                sqlx::query(
                    "UPDATE gateway_keys AS k SET last_used_at = v.at \
                     FROM UNNEST($1::uuid[], $2::timestamptz[]) AS v(id, at) \
                     WHERE k.id = v.id AND (k.last_used_at IS NULL OR k.last_used_at < v.at)",
                )
                .bind(ids)
                .bind(times)
                .execute(p)
                .await?;
            }
            Pool::Sqlite(p) => {
                // `[[id, at], ...]` in the text forms the columns hold, so `<` compares times.
                let pairs: Vec<(String, String)> = uses
                    .iter()
                    .map(|(id, at)| {
                        (
                            DbUuid::from(*id).sqlite_text(),
                            DbTime::from(*at).sqlite_text(),
                        )
                    })
                    .collect();
                let json = serde_json::to_string(&pairs).map_err(|e| {
                    StoreError::Unavailable(format!("cannot encode last-used times: {e}"))
                })?;
                sqlx::query(
                    "UPDATE gateway_keys SET last_used_at = v.at \
                     FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS at \
                           FROM json_each($1)) AS v \
                     WHERE gateway_keys.id = v.id \
                       AND (gateway_keys.last_used_at IS NULL OR gateway_keys.last_used_at < v.at)",
                )
                .bind(json)
                .execute(p)
                .await?;
            }
        }
        Ok(())
    }
}
