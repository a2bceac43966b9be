//! Routes: an organization's named virtual models. The policy is stored as the JSON the
//! management API accepts, validated before it gets here.

use chrono::{DateTime, Utc};
use flo2_core::{OrgId, RoutePolicy};
use uuid::Uuid;

use crate::changes::{write_with_change, Change};
use crate::pool::on_pool;
use crate::row_by_row::{decode_rows, Loaded};
use crate::types::{DbTime, DbUuid};
use crate::{Store, StoreError};

/// A stored route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Its id.
    pub id: Uuid,
    /// Its name, unique in the organization; requests use it as `model`.
    pub name: String,
    /// What it does.
    pub policy: RoutePolicy,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last replaced.
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct RouteRow {
    id: DbUuid,
    name: String,
    config: String,
    created_at: DbTime,
    updated_at: DbTime,
}

impl TryFrom<RouteRow> for Route {
    type Error = StoreError;

    fn try_from(r: RouteRow) -> Result<Self, StoreError> {
        let policy = serde_json::from_str(&r.config)
            .map_err(|e| StoreError::Corrupt(format!("route {:?}: {e}", r.name)))?;
        Ok(Route {
            id: r.id.0,
            name: r.name,
            policy,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        })
    }
}

const COLUMNS: &str = "id, name, config, created_at, updated_at";

impl Store {
    /// Creates or replaces `org`'s route `name`; true when it was created.
    pub async fn put_route(
        &self,
        org: OrgId,
        name: &str,
        policy: &RoutePolicy,
    ) -> Result<(Route, bool), StoreError> {
        let config = serde_json::to_string(policy)
            .map_err(|e| StoreError::Corrupt(format!("route policy: {e}")))?;
        let now = DbTime::now();
        let change = Change::org_config(org);
        let existed: bool = write_with_change!(self, &change, tx => {
            // COUNT(*) is a 64-bit integer on both databases (a bare `1` is 32-bit on PostgreSQL).
            let existed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM routes WHERE org_id = $1 AND name = $2")
                .bind(DbUuid::from(org))
                .bind(name)
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO routes (id, org_id, name, config, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
                 ON CONFLICT (org_id, name) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at",
            )
            .bind(DbUuid(Uuid::now_v7()))
            .bind(DbUuid::from(org))
            .bind(name)
            .bind(&config)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            existed > 0
        });
        Ok((self.route(org, name).await?, !existed))
    }

    /// One route of `org` by name.
    pub async fn route(&self, org: OrgId, name: &str) -> Result<Route, StoreError> {
        let row: RouteRow = on_pool!(&self.pool, p => sqlx::query_as(
            &format!("SELECT {COLUMNS} FROM routes WHERE org_id = $1 AND name = $2")
        )
        .bind(DbUuid::from(org))
        .bind(name)
        .fetch_one(p)
        .await)?;
        row.try_into()
    }

    /// `org`'s routes by name. A route that cannot be read back is left out with an error in the
    /// log (see [`Store::routes_loaded`]).
    pub async fn routes(&self, org: OrgId) -> Result<Vec<Route>, StoreError> {
        Ok(self.routes_loaded(org).await?.logged(org))
    }

    /// `org`'s routes by name, read row by row: a route that cannot be read back is left out and
    /// reported in [`Loaded::skipped`].
    pub async fn routes_loaded(&self, org: OrgId) -> Result<Loaded<Route>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM routes WHERE org_id = $1 ORDER BY name");
        Ok(on_pool!(&self.pool, p => {
            let rows = sqlx::query(&sql).bind(DbUuid::from(org)).fetch_all(p).await?;
            decode_rows::<_, RouteRow, Route>(&rows, "routes")
        }))
    }

    /// Deletes `org`'s route `name`.
    pub async fn delete_route(&self, org: OrgId, name: &str) -> Result<(), StoreError> {
        let change = Change::org_config(org);
        let done: u64 = write_with_change!(self, &change, tx => {
            sqlx::query("DELETE FROM routes WHERE org_id = $1 AND name = $2")
                .bind(DbUuid::from(org))
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected()
        });
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
