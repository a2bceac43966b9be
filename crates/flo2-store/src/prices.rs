//! Per-organization price overrides. Each applies from its `effective_from`; a newer one never
//! changes a cost already recorded, because costs are computed and stored when the call happens.

use chrono::{DateTime, Utc};
use flo2_core::{ModelPrice, OrgId, PricePerMtok, ProviderKind};
use uuid::Uuid;

use crate::audit::{insert_audit, NewAuditEntry};
use crate::changes::{write_with_change, Change};
use crate::pool::on_pool;
use crate::row_by_row::{decode_rows, Loaded};
use crate::types::{DbTime, DbUuid};
use crate::{Store, StoreError};

/// An organization's price for one model from a point in time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceOverride {
    /// Its id.
    pub id: Uuid,
    /// Provider.
    pub provider: ProviderKind,
    /// The provider's model id (any, including custom models).
    pub model: String,
    /// The price by token kind.
    pub price: ModelPrice,
    /// Context window, if the organization states one (custom models).
    pub context_window: Option<i64>,
    /// Tool support, if stated.
    pub tools: Option<bool>,
    /// Image support, if stated.
    pub vision: Option<bool>,
    /// JSON mode support, if stated.
    pub json: Option<bool>,
    /// From when it applies.
    pub effective_from: DateTime<Utc>,
    /// When it was entered.
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct PriceRow {
    id: DbUuid,
    provider: String,
    model: String,
    input_micros_per_mtok: i64,
    output_micros_per_mtok: i64,
    cached_input_micros_per_mtok: Option<i64>,
    cache_write_micros_per_mtok: Option<i64>,
    reasoning_micros_per_mtok: Option<i64>,
    context_window: Option<i64>,
    supports_tools: Option<bool>,
    supports_vision: Option<bool>,
    supports_json: Option<bool>,
    effective_from: DbTime,
    created_at: DbTime,
}

impl TryFrom<PriceRow> for PriceOverride {
    type Error = StoreError;
    fn try_from(r: PriceRow) -> Result<Self, StoreError> {
        Ok(PriceOverride {
            id: r.id.0,
            provider: r
                .provider
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("provider {:?}", r.provider)))?,
            model: r.model,
            price: ModelPrice {
                input: PricePerMtok(r.input_micros_per_mtok),
                output: PricePerMtok(r.output_micros_per_mtok),
                cached_input: r.cached_input_micros_per_mtok.map(PricePerMtok),
                cache_write: r.cache_write_micros_per_mtok.map(PricePerMtok),
                reasoning: r.reasoning_micros_per_mtok.map(PricePerMtok),
            },
            context_window: r.context_window,
            tools: r.supports_tools,
            vision: r.supports_vision,
            json: r.supports_json,
            effective_from: r.effective_from.0,
            created_at: r.created_at.0,
        })
    }
}

const SELECT_PRICES: &str = "SELECT id, provider, model, input_micros_per_mtok, output_micros_per_mtok, \
     cached_input_micros_per_mtok, cache_write_micros_per_mtok, reasoning_micros_per_mtok, context_window, \
     supports_tools, supports_vision, supports_json, effective_from, created_at \
     FROM prices WHERE org_id = $1 ORDER BY provider, model, effective_from";

impl Store {
    /// Stores an override, and `audit` in the same transaction; `Conflict` when one for the same
    /// model starts at the same instant.
    pub async fn create_price(
        &self,
        org: OrgId,
        p: &PriceOverride,
        audit: Option<&NewAuditEntry>,
    ) -> Result<PriceOverride, StoreError> {
        let change = Change::org_config(org);
        write_with_change!(self, &change, tx => {
            sqlx::query(
                "INSERT INTO prices (id, org_id, provider, model, input_micros_per_mtok, output_micros_per_mtok, \
                 cached_input_micros_per_mtok, cache_write_micros_per_mtok, reasoning_micros_per_mtok, context_window, \
                 supports_tools, supports_vision, supports_json, effective_from, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            )
            .bind(DbUuid(p.id))
            .bind(DbUuid::from(org))
            .bind(p.provider.as_str())
            .bind(&p.model)
            .bind(p.price.input.0)
            .bind(p.price.output.0)
            .bind(p.price.cached_input.map(|v| v.0))
            .bind(p.price.cache_write.map(|v| v.0))
            .bind(p.price.reasoning.map(|v| v.0))
            .bind(p.context_window)
            .bind(p.tools)
            .bind(p.vision)
            .bind(p.json)
            .bind(DbTime::from(p.effective_from))
            .bind(DbTime::from(p.created_at))
            .execute(&mut *tx)
            .await?;
            if let Some(entry) = audit {
                insert_audit!(&mut *tx, org, entry)?;
            }
        });
        Ok(p.clone())
    }

    /// `org`'s overrides, by provider, model and start. A row that cannot be read back is left
    /// out with an error in the log (see [`Store::prices_loaded`]).
    pub async fn prices(&self, org: OrgId) -> Result<Vec<PriceOverride>, StoreError> {
        Ok(self.prices_loaded(org).await?.logged(org))
    }

    /// `org`'s overrides, read row by row: a row that cannot be read back is left out and
    /// reported in [`Loaded::skipped`] instead of failing the whole list.
    pub async fn prices_loaded(&self, org: OrgId) -> Result<Loaded<PriceOverride>, StoreError> {
        Ok(on_pool!(&self.pool, p => {
            let rows = sqlx::query(SELECT_PRICES)
                .bind(DbUuid::from(org))
                .fetch_all(p)
                .await?;
            decode_rows::<_, PriceRow, PriceOverride>(&rows, "prices")
        }))
    }

    /// Deletes one of `org`'s overrides, and records `audit` in the same transaction; `NotFound`
    /// (and nothing recorded) for an unknown id or another tenant's. The data plane stops using
    /// it with the change notice written in the same transaction.
    pub async fn delete_price(
        &self,
        org: OrgId,
        id: Uuid,
        audit: Option<&NewAuditEntry>,
    ) -> Result<(), StoreError> {
        let change = Change::org_config(org);
        write_with_change!(self, &change, tx => {
            let done = sqlx::query("DELETE FROM prices WHERE org_id = $1 AND id = $2")
                .bind(DbUuid::from(org))
                .bind(DbUuid(id))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if done == 0 {
                // Dropping the transaction rolls it back: no notice, no entry.
                return Err(StoreError::NotFound);
            }
            if let Some(entry) = audit {
                insert_audit!(&mut *tx, org, entry)?;
            }
        });
        Ok(())
    }
}
