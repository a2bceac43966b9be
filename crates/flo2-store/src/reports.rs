//! Usage reports: filtered, grouped sums of usage records, and a row-by-row export.
//!
//! Sums of cost are read as text and added in `i128`, so no total overflows or rounds. Report
//! totals are the sum of the groups returned, so they equal the rows to the last digit.

use chrono::{DateTime, Utc};
use flo2_core::{GatewayKeyId, OrgId, PicoUsd, TeamId};
use futures_util::TryStreamExt;
use tokio::sync::mpsc;

use crate::pool::{on_pool, Pool};
use crate::types::{DbTime, DbUuid};
use crate::{Store, StoreError};

/// Which records a report covers. `None` fields do not filter.
#[derive(Clone, Debug, Default)]
pub struct UsageFilter {
    /// Calls started at or after.
    pub from: Option<DateTime<Utc>>,
    /// Calls started before.
    pub to: Option<DateTime<Utc>>,
    /// One team.
    pub team_id: Option<TeamId>,
    /// One gateway key.
    pub api_key_id: Option<GatewayKeyId>,
    /// One provider.
    pub provider: Option<String>,
    /// One model (the provider's id).
    pub model: Option<String>,
    /// One route.
    pub route: Option<String>,
    /// One HTTP status.
    pub status: Option<i64>,
}

/// What to group by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    /// UTC hour (`2026-11-24T09`).
    Hour,
    /// UTC day (`2026-11-24`).
    Day,
    /// UTC month (`2026-11`).
    Month,
    /// `provider/model`.
    Model,
    /// Provider.
    Provider,
    /// Team.
    Team,
    /// Gateway key.
    Key,
    /// Route.
    Route,
    /// HTTP status.
    Status,
}

impl GroupBy {
    /// Parses the API name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "hour" => GroupBy::Hour,
            "day" => GroupBy::Day,
            "month" => GroupBy::Month,
            "model" => GroupBy::Model,
            "provider" => GroupBy::Provider,
            "team" => GroupBy::Team,
            "key" => GroupBy::Key,
            "route" => GroupBy::Route,
            "status" => GroupBy::Status,
            _ => return None,
        })
    }

    fn expression(self, pool: &Pool) -> &'static str {
        let pg = matches!(pool, Pool::Postgres(_));
        match (self, pg) {
            (GroupBy::Hour, false) => "substr(u.started_at, 1, 13)",
            (GroupBy::Day, false) => "substr(u.started_at, 1, 10)",
            (GroupBy::Month, false) => "substr(u.started_at, 1, 7)",
            (GroupBy::Hour, true) => {
                "to_char(u.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24')"
            }
            (GroupBy::Day, true) => "to_char(u.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
            (GroupBy::Month, true) => "to_char(u.started_at AT TIME ZONE 'UTC', 'YYYY-MM')",
            (GroupBy::Model, _) => "u.provider || '/' || u.model",
            (GroupBy::Provider, _) => "u.provider",
            (GroupBy::Team, _) => "COALESCE(CAST(u.team_id AS TEXT), '')",
            (GroupBy::Key, _) => "COALESCE(CAST(u.gateway_key_id AS TEXT), '')",
            (GroupBy::Route, _) => "COALESCE(u.route, '')",
            (GroupBy::Status, _) => "CAST(u.status AS TEXT)",
        }
    }
}

/// Sums over a set of calls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageTotals {
    /// Number of upstream calls.
    pub calls: i64,
    /// Uncached input tokens.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Cached input tokens.
    pub cached_input_tokens: i64,
    /// Cache-write tokens.
    pub cache_write_tokens: i64,
    /// Reasoning tokens.
    pub reasoning_tokens: i64,
    /// Cost.
    pub cost: PicoUsd,
    /// What the baseline models would have cost.
    pub baseline_cost: PicoUsd,
    /// The part of `baseline_cost - cost` saved by answers served from the cache (the rest is
    /// what routing saved).
    pub cache_savings: PicoUsd,
    /// Calls to a model the organization had no price for (recorded at $0, so `cost` is a
    /// lower bound while this is above 0).
    pub unpriced_calls: i64,
}

impl UsageTotals {
    /// Adds another set.
    pub fn add(&mut self, other: &UsageTotals) {
        self.calls += other.calls;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cached_input_tokens += other.cached_input_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.reasoning_tokens += other.reasoning_tokens;
        self.cost = self.cost + other.cost;
        self.baseline_cost = self.baseline_cost + other.baseline_cost;
        self.cache_savings = self.cache_savings + other.cache_savings;
        self.unpriced_calls += other.unpriced_calls;
    }

    /// What routing saved: the savings not due to the cache.
    pub fn routing_savings(&self) -> PicoUsd {
        self.baseline_cost - self.cost - self.cache_savings
    }
}

/// One group of a report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageGroup {
    /// The group's key (a time bucket, `provider/model`, an id, ...).
    pub key: String,
    /// A display name where the key is an id (team and key names).
    pub label: Option<String>,
    /// The sums.
    pub totals: UsageTotals,
}

#[derive(sqlx::FromRow)]
struct GroupRow {
    key: String,
    label: Option<String>,
    calls: i64,
    input_tokens: i64,
    output_tokens: i64,
    cached_input_tokens: i64,
    cache_write_tokens: i64,
    reasoning_tokens: i64,
    cost: String,
    baseline_cost: String,
    cache_savings: String,
    unpriced_calls: i64,
}

fn pico(text: &str) -> Result<PicoUsd, StoreError> {
    // SUM over integers comes back as an integer (SQLite) or numeric (PostgreSQL) text.
    let digits = text.split('.').next().unwrap_or(text);
    digits
        .parse::<i128>()
        .map(PicoUsd)
        .map_err(|_| StoreError::Corrupt(format!("cost sum {text:?}")))
}

/// One exported call.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ExportRow {
    /// Record id.
    pub id: DbUuid,
    /// Request id.
    pub request_id: DbUuid,
    /// Start.
    pub started_at: DbTime,
    /// Team name, if the team still exists.
    pub team: Option<String>,
    /// Key name, if the key still exists.
    pub api_key: Option<String>,
    /// Inbound API.
    pub inbound_api: String,
    /// Requested model or route.
    pub requested_model: String,
    /// Route.
    pub route: Option<String>,
    /// Attempt role.
    pub attempt_role: String,
    /// Provider.
    pub provider: String,
    /// Model.
    pub model: String,
    /// Status.
    pub status: i64,
    /// Tokens.
    pub input_tokens: i64,
    /// Tokens.
    pub output_tokens: i64,
    /// Tokens.
    pub cached_input_tokens: i64,
    /// Tokens.
    pub cache_write_tokens: i64,
    /// Tokens.
    pub reasoning_tokens: i64,
    /// Cost, pico-USD.
    pub cost_picousd: i64,
    /// Baseline cost, pico-USD.
    pub baseline_cost_picousd: i64,
    /// Latency.
    pub latency_ms: i64,
    /// Time to first token.
    pub ttft_ms: Option<i64>,
    /// No price was known for the model (the cost of 0 is unknown, not free).
    pub unpriced: bool,
}

macro_rules! push_filters {
    ($b:expr, $org:expr, $f:expr) => {{
        let f: &UsageFilter = $f;
        $b.push(" WHERE u.org_id = ").push_bind(DbUuid::from($org));
        if let Some(t) = f.from {
            $b.push(" AND u.started_at >= ").push_bind(DbTime::from(t));
        }
        if let Some(t) = f.to {
            $b.push(" AND u.started_at < ").push_bind(DbTime::from(t));
        }
        if let Some(id) = f.team_id {
            $b.push(" AND u.team_id = ").push_bind(DbUuid::from(id));
        }
        if let Some(id) = f.api_key_id {
            $b.push(" AND u.gateway_key_id = ")
                .push_bind(DbUuid::from(id));
        }
        if let Some(p) = &f.provider {
            $b.push(" AND u.provider = ").push_bind(p.clone());
        }
        if let Some(m) = &f.model {
            $b.push(" AND u.model = ").push_bind(m.clone());
        }
        if let Some(r) = &f.route {
            $b.push(" AND u.route = ").push_bind(r.clone());
        }
        if let Some(s) = f.status {
            $b.push(" AND u.status = ").push_bind(s);
        }
    }};
}

const EXPORT_COLUMNS: &str = "SELECT u.id, u.request_id, u.started_at, t.name AS team, k.name AS api_key, u.inbound_api, \
    u.requested_model, u.route, u.attempt_role, u.provider, u.model, u.status, u.input_tokens, u.output_tokens, \
    u.cached_input_tokens, u.cache_write_tokens, u.reasoning_tokens, u.cost_picousd, u.baseline_cost_picousd, \
    u.latency_ms, u.ttft_ms, u.unpriced FROM usage_records u \
    LEFT JOIN teams t ON t.id = u.team_id LEFT JOIN gateway_keys k ON k.id = u.gateway_key_id";

impl Store {
    /// `org`'s usage matching `filter`, grouped, ordered by key; and the totals of those groups.
    pub async fn usage_report(
        &self,
        org: OrgId,
        filter: &UsageFilter,
        group_by: GroupBy,
    ) -> Result<(Vec<UsageGroup>, UsageTotals), StoreError> {
        let key = group_by.expression(&self.pool);
        let label = match group_by {
            GroupBy::Team => "MAX(t.name)",
            GroupBy::Key => "MAX(k.name)",
            _ => "CAST(NULL AS TEXT)",
        };
        let head = format!(
            "SELECT {key} AS key, {label} AS label, COUNT(*) AS calls, \
             CAST(SUM(u.input_tokens) AS BIGINT) AS input_tokens, CAST(SUM(u.output_tokens) AS BIGINT) AS output_tokens, \
             CAST(SUM(u.cached_input_tokens) AS BIGINT) AS cached_input_tokens, CAST(SUM(u.cache_write_tokens) AS BIGINT) AS cache_write_tokens, \
             CAST(SUM(u.reasoning_tokens) AS BIGINT) AS reasoning_tokens, \
             CAST(SUM(u.cost_picousd) AS TEXT) AS cost, CAST(SUM(u.baseline_cost_picousd) AS TEXT) AS baseline_cost, \
             CAST(SUM(CASE WHEN u.cache_hit THEN u.baseline_cost_picousd - u.cost_picousd ELSE 0 END) AS TEXT) AS cache_savings, \
             CAST(SUM(CASE WHEN u.unpriced THEN 1 ELSE 0 END) AS BIGINT) AS unpriced_calls \
             FROM usage_records u LEFT JOIN teams t ON t.id = u.team_id LEFT JOIN gateway_keys k ON k.id = u.gateway_key_id"
        );
        let rows: Vec<GroupRow> = on_pool!(&self.pool, p => {
            let mut b = sqlx::QueryBuilder::new(head);
            push_filters!(b, org, filter);
            b.push(format!(" GROUP BY {key} ORDER BY {key}"));
            b.build_query_as().fetch_all(p).await?
        });
        let mut totals = UsageTotals::default();
        let groups = rows
            .into_iter()
            .map(|r| {
                let t = UsageTotals {
                    calls: r.calls,
                    input_tokens: r.input_tokens,
                    output_tokens: r.output_tokens,
                    cached_input_tokens: r.cached_input_tokens,
                    cache_write_tokens: r.cache_write_tokens,
                    reasoning_tokens: r.reasoning_tokens,
                    cost: pico(&r.cost)?,
                    baseline_cost: pico(&r.baseline_cost)?,
                    cache_savings: pico(&r.cache_savings)?,
                    unpriced_calls: r.unpriced_calls,
                };
                totals.add(&t);
                Ok(UsageGroup {
                    key: r.key,
                    label: r.label,
                    totals: t,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((groups, totals))
    }

    /// Cost per `bucket` (hour, day or month) and `by` (model, provider, ...), for charts: rows of
    /// (bucket, key, cost), ordered by bucket then key.
    pub async fn usage_series(
        &self,
        org: OrgId,
        filter: &UsageFilter,
        bucket: GroupBy,
        by: GroupBy,
    ) -> Result<Vec<(String, String, PicoUsd)>, StoreError> {
        let (b_expr, k_expr) = (bucket.expression(&self.pool), by.expression(&self.pool));
        let head = format!(
            "SELECT {b_expr} AS bucket, {k_expr} AS key, CAST(SUM(u.cost_picousd) AS TEXT) AS cost FROM usage_records u"
        );
        let rows: Vec<(String, String, String)> = on_pool!(&self.pool, p => {
            let mut b = sqlx::QueryBuilder::new(head);
            push_filters!(b, org, filter);
            b.push(format!(" GROUP BY {b_expr}, {k_expr} ORDER BY {b_expr}, {k_expr}"));
            b.build_query_as().fetch_all(p).await?
        });
        rows.into_iter()
            .map(|(bucket, key, cost)| Ok((bucket, key, pico(&cost)?)))
            .collect()
    }

    /// The models `org` called without a price, among the calls matching `filter`: (provider,
    /// model, calls), most calls first (at most 20), so the usage page can ask for their prices.
    pub async fn unpriced_models(
        &self,
        org: OrgId,
        filter: &UsageFilter,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        Ok(on_pool!(&self.pool, p => {
            let mut b = sqlx::QueryBuilder::new(
                "SELECT u.provider, u.model, COUNT(*) AS calls FROM usage_records u",
            );
            push_filters!(b, org, filter);
            b.push(" AND u.unpriced GROUP BY u.provider, u.model ORDER BY calls DESC, u.provider, u.model LIMIT 20");
            b.build_query_as::<(String, String, i64)>().fetch_all(p).await?
        }))
    }

    /// The newest `limit` calls matching `filter`, newest first (the request log).
    pub async fn recent_usage(
        &self,
        org: OrgId,
        filter: &UsageFilter,
        limit: i64,
    ) -> Result<Vec<ExportRow>, StoreError> {
        Ok(on_pool!(&self.pool, p => {
            let mut b = sqlx::QueryBuilder::new(EXPORT_COLUMNS);
            push_filters!(b, org, filter);
            b.push(" ORDER BY u.started_at DESC, u.id DESC LIMIT ").push_bind(limit);
            b.build_query_as::<ExportRow>().fetch_all(p).await?
        }))
    }

    /// Streams `org`'s matching calls, oldest first, into `tx` (in batches, so memory stays
    /// flat however many rows there are). Stops early when the receiver goes away.
    pub async fn export_usage(
        &self,
        org: OrgId,
        filter: &UsageFilter,
        tx: mpsc::Sender<Vec<ExportRow>>,
    ) -> Result<(), StoreError> {
        const BATCH: usize = 500;
        on_pool!(&self.pool, p => {
            let mut b = sqlx::QueryBuilder::new(EXPORT_COLUMNS);
            push_filters!(b, org, filter);
            b.push(" ORDER BY u.started_at, u.id");
            let query = b.build_query_as::<ExportRow>();
            let mut rows = query.fetch(p);
            let mut batch = Vec::with_capacity(BATCH);
            while let Some(row) = rows.try_next().await? {
                batch.push(row);
                if batch.len() == BATCH && tx.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))).await.is_err() {
                    return Ok(());
                }
            }
            if !batch.is_empty() {
                let _ = tx.send(batch).await;
            }
        });
        Ok(())
    }
}
