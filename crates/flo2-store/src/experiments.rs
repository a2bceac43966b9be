//! Experiments: an organization's A/B tests on its routes. The definition is stored as the
//! checked JSON of [`ExperimentSpec`]; the state moves by compare-and-set, so two requests (or
//! replicas) changing one experiment at once cannot both win, and the database itself allows at
//! most one running experiment per route. Every write records an organization-configuration
//! change: running experiments ride in the data plane's cached configuration.

use chrono::{DateTime, Utc};
use flo2_core::experiment::{ExperimentSpec, ExperimentState};
use flo2_core::OrgId;
use uuid::Uuid;

use crate::changes::{write_with_change, Change};
use crate::pool::on_pool;
use crate::row_by_row::{decode_rows, Loaded};
use crate::types::{DbTime, DbUuid};
use crate::{Store, StoreError};

/// A stored experiment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Experiment {
    /// Its id (also what assignment hashes with the unit).
    pub id: Uuid,
    /// The definition.
    pub spec: ExperimentSpec,
    /// Where it is in its life.
    pub state: ExperimentState,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it first started running.
    pub started_at: Option<DateTime<Utc>>,
    /// When it stopped.
    pub stopped_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct ExperimentRow {
    id: DbUuid,
    spec: String,
    state: String,
    created_at: DbTime,
    updated_at: DbTime,
    started_at: Option<DbTime>,
    stopped_at: Option<DbTime>,
}

impl TryFrom<ExperimentRow> for Experiment {
    type Error = StoreError;

    fn try_from(r: ExperimentRow) -> Result<Self, StoreError> {
        let corrupt = |what: String| StoreError::Corrupt(format!("experiment {}: {what}", r.id.0));
        let spec = serde_json::from_str(&r.spec).map_err(|e| corrupt(e.to_string()))?;
        let state = r.state.parse().map_err(|e| corrupt(format!("{e}")))?;
        Ok(Experiment {
            id: r.id.0,
            spec,
            state,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
            started_at: r.started_at.map(|t| t.0),
            stopped_at: r.stopped_at.map(|t| t.0),
        })
    }
}

const COLUMNS: &str = "id, spec, state, created_at, updated_at, started_at, stopped_at";

fn spec_json(spec: &ExperimentSpec) -> Result<String, StoreError> {
    serde_json::to_string(spec).map_err(|e| StoreError::Corrupt(format!("experiment spec: {e}")))
}

impl Store {
    /// Creates a draft experiment for `org` ([`StoreError::Conflict`] when the name is taken).
    pub async fn create_experiment(
        &self,
        org: OrgId,
        spec: &ExperimentSpec,
    ) -> Result<Experiment, StoreError> {
        let id = Uuid::now_v7();
        let json = spec_json(spec)?;
        let now = DbTime::now();
        let change = Change::org_config(org);
        write_with_change!(self, &change, tx => {
            sqlx::query(
                "INSERT INTO experiments (id, org_id, name, route, spec, state, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(DbUuid(id))
            .bind(DbUuid::from(org))
            .bind(&spec.name)
            .bind(&spec.route)
            .bind(&json)
            .bind(ExperimentState::Draft.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        });
        self.experiment(org, id).await
    }

    /// One experiment of `org` ([`StoreError::NotFound`] for another organization's).
    pub async fn experiment(&self, org: OrgId, id: Uuid) -> Result<Experiment, StoreError> {
        let row: ExperimentRow = on_pool!(&self.pool, p => sqlx::query_as(
            &format!("SELECT {COLUMNS} FROM experiments WHERE org_id = $1 AND id = $2")
        )
        .bind(DbUuid::from(org))
        .bind(DbUuid(id))
        .fetch_one(p)
        .await)?;
        row.try_into()
    }

    /// `org`'s experiments, newest first, read row by row (one that cannot be read back is
    /// reported in [`Loaded::skipped`]).
    pub async fn experiments_loaded(&self, org: OrgId) -> Result<Loaded<Experiment>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM experiments WHERE org_id = $1 ORDER BY created_at DESC, id DESC"
        );
        Ok(on_pool!(&self.pool, p => {
            let rows = sqlx::query(&sql).bind(DbUuid::from(org)).fetch_all(p).await?;
            decode_rows::<_, ExperimentRow, Experiment>(&rows, "experiments")
        }))
    }

    /// `org`'s experiments, newest first (unreadable ones left out with an error in the log).
    pub async fn experiments(&self, org: OrgId) -> Result<Vec<Experiment>, StoreError> {
        Ok(self.experiments_loaded(org).await?.logged(org))
    }

    /// Replaces the definition of `org`'s experiment `id` while it is a draft
    /// ([`StoreError::NotFound`] when there is no such draft, [`StoreError::Conflict`] when the
    /// new name is taken).
    pub async fn update_draft_experiment(
        &self,
        org: OrgId,
        id: Uuid,
        spec: &ExperimentSpec,
    ) -> Result<Experiment, StoreError> {
        let json = spec_json(spec)?;
        let change = Change::org_config(org);
        let done: u64 = write_with_change!(self, &change, tx => {
            sqlx::query(
                "UPDATE experiments SET name = $1, route = $2, spec = $3, updated_at = $4 \
                 WHERE org_id = $5 AND id = $6 AND state = $7",
            )
            .bind(&spec.name)
            .bind(&spec.route)
            .bind(&json)
            .bind(DbTime::now())
            .bind(DbUuid::from(org))
            .bind(DbUuid(id))
            .bind(ExperimentState::Draft.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected()
        });
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        self.experiment(org, id).await
    }

    /// Moves `org`'s experiment `id` from `from` to `to`, only if it is still in `from`
    /// (`Ok(false)` when another change got there first). Starting a second running experiment
    /// on a route is [`StoreError::Conflict`].
    pub async fn set_experiment_state(
        &self,
        org: OrgId,
        id: Uuid,
        from: ExperimentState,
        to: ExperimentState,
    ) -> Result<bool, StoreError> {
        let now = DbTime::now();
        let started = (to == ExperimentState::Running).then_some(now);
        let stopped = (to == ExperimentState::Stopped).then_some(now);
        let change = Change::org_config(org);
        let done: u64 = write_with_change!(self, &change, tx => {
            sqlx::query(
                "UPDATE experiments SET state = $1, updated_at = $2, \
                 started_at = COALESCE(started_at, $3), stopped_at = COALESCE($4, stopped_at) \
                 WHERE org_id = $5 AND id = $6 AND state = $7",
            )
            .bind(to.as_str())
            .bind(now)
            .bind(started)
            .bind(stopped)
            .bind(DbUuid::from(org))
            .bind(DbUuid(id))
            .bind(from.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected()
        });
        Ok(done > 0)
    }

    /// Deletes `org`'s experiment `id`.
    pub async fn delete_experiment(&self, org: OrgId, id: Uuid) -> Result<(), StoreError> {
        let change = Change::org_config(org);
        let done: u64 = write_with_change!(self, &change, tx => {
            sqlx::query("DELETE FROM experiments WHERE org_id = $1 AND id = $2")
                .bind(DbUuid::from(org))
                .bind(DbUuid(id))
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
