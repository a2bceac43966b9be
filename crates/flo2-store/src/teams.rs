//! Teams: groups inside an organization that own gateway keys and are billed together.

use chrono::{DateTime, Utc};
use flo2_core::{OrgId, TeamId};

use crate::changes::{record_change, Change};
use crate::pool::{on_pool, BeginWrite as _};
use crate::types::{DbTime, DbUuid};
use crate::{Store, StoreError};

/// A team.
#[derive(Clone, Debug)]
pub struct Team {
    /// Its id.
    pub id: TeamId,
    /// Unique within the organization.
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct TeamRow {
    id: DbUuid,
    name: String,
    created_at: DbTime,
}

impl From<TeamRow> for Team {
    fn from(r: TeamRow) -> Self {
        Team {
            id: r.id.into(),
            name: r.name,
            created_at: r.created_at.0,
        }
    }
}

impl Store {
    /// Creates a team; `Conflict` when the name is taken in `org`.
    pub async fn create_team(&self, org: OrgId, name: &str) -> Result<Team, StoreError> {
        let team = Team {
            id: TeamId::new(),
            name: name.to_owned(),
            created_at: DbTime::now().0,
        };
        on_pool!(&self.pool, p => sqlx::query(
            "INSERT INTO teams (id, org_id, name, created_at) VALUES ($1, $2, $3, $4)"
        )
        .bind(DbUuid::from(team.id))
        .bind(DbUuid::from(org))
        .bind(&team.name)
        .bind(DbTime::from(team.created_at))
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(team)
    }

    /// `org`'s teams by name.
    pub async fn teams(&self, org: OrgId) -> Result<Vec<Team>, StoreError> {
        let rows: Vec<TeamRow> = on_pool!(&self.pool, p => sqlx::query_as(
            "SELECT id, name, created_at FROM teams WHERE org_id = $1 ORDER BY name"
        )
        .bind(DbUuid::from(org))
        .fetch_all(p)
        .await)?;
        Ok(rows.into_iter().map(Team::from).collect())
    }

    /// One team of `org`.
    pub async fn team(&self, org: OrgId, id: TeamId) -> Result<Team, StoreError> {
        let row: TeamRow = on_pool!(&self.pool, p => sqlx::query_as(
            "SELECT id, name, created_at FROM teams WHERE org_id = $1 AND id = $2"
        )
        .bind(DbUuid::from(org))
        .bind(DbUuid::from(id))
        .fetch_one(p)
        .await)?;
        Ok(row.into())
    }

    /// Renames a team of `org`.
    pub async fn rename_team(
        &self,
        org: OrgId,
        id: TeamId,
        name: &str,
    ) -> Result<Team, StoreError> {
        let done = on_pool!(&self.pool, p => sqlx::query("UPDATE teams SET name = $3 WHERE org_id = $1 AND id = $2")
            .bind(DbUuid::from(org))
            .bind(DbUuid::from(id))
            .bind(name)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        self.team(org, id).await
    }

    /// Deletes a team of `org`. Its gateway keys, revoked ones included, go with it, so the keys
    /// stop working at once; their past usage records stay.
    pub async fn delete_team(&self, org: OrgId, id: TeamId) -> Result<(), StoreError> {
        let change = Change::org_config(org);
        let recorded: Vec<Change> = on_pool!(&self.pool, p => {
            let mut tx = p.begin_write().await?;
            let hashes: Vec<Vec<u8>> = sqlx::query_scalar("SELECT key_hash FROM gateway_keys WHERE org_id = $1 AND team_id = $2")
                .bind(DbUuid::from(org))
                .bind(DbUuid::from(id))
                .fetch_all(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM gateway_keys WHERE org_id = $1 AND team_id = $2")
                .bind(DbUuid::from(org))
                .bind(DbUuid::from(id))
                .execute(&mut *tx)
                .await?;
            let done = sqlx::query("DELETE FROM teams WHERE org_id = $1 AND id = $2")
                .bind(DbUuid::from(org))
                .bind(DbUuid::from(id))
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            let mut recorded = Vec::with_capacity(hashes.len() + 1);
            for hash in &hashes {
                recorded.push(record_change!(tx, &Change::gateway_key(org, hash))?);
            }
            recorded.push(record_change!(tx, &change)?);
            tx.commit().await?;
            recorded
        });
        for change in &recorded {
            self.publish(change);
        }
        Ok(())
    }
}
