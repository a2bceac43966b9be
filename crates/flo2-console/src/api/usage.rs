//! Usage reports and CSV exports ([`crate::service::usage`]). Amounts are exact decimal strings
//! in USD (12 decimal places); totals are the sum of the rows to the last digit.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use flo2_store::UsageTotals;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::service::usage::{self, UsageQuery};
use crate::ConsoleState;

/// Sums for a group or for the whole report.
#[derive(Serialize, ToSchema)]
pub struct TotalsView {
    calls: i64,
    input_tokens: i64,
    output_tokens: i64,
    cached_input_tokens: i64,
    cache_write_tokens: i64,
    reasoning_tokens: i64,
    /// What was spent, exact USD.
    cost_usd: String,
    /// What the requested (or route baseline) models would have cost, exact USD.
    baseline_cost_usd: String,
    /// `baseline_cost_usd - cost_usd`.
    savings_usd: String,
    /// The part of `savings_usd` due to routing (cheaper models than the baseline).
    routing_savings_usd: String,
    /// The part of `savings_usd` due to cache hits.
    cache_savings_usd: String,
    /// Calls to models without a price: each was recorded at $0, so while this is above 0
    /// `cost_usd` is a lower bound (set the price with `POST /api/v1/prices`).
    unpriced_calls: i64,
}

impl From<&UsageTotals> for TotalsView {
    fn from(t: &UsageTotals) -> Self {
        TotalsView {
            calls: t.calls,
            input_tokens: t.input_tokens,
            output_tokens: t.output_tokens,
            cached_input_tokens: t.cached_input_tokens,
            cache_write_tokens: t.cache_write_tokens,
            reasoning_tokens: t.reasoning_tokens,
            cost_usd: t.cost.to_string(),
            baseline_cost_usd: t.baseline_cost.to_string(),
            savings_usd: (t.baseline_cost - t.cost).to_string(),
            routing_savings_usd: t.routing_savings().to_string(),
            cache_savings_usd: t.cache_savings.to_string(),
            unpriced_calls: t.unpriced_calls,
        }
    }
}

/// One group.
#[derive(Serialize, ToSchema)]
pub struct GroupView {
    /// The group's key: a UTC time bucket, `provider/model`, a provider, an id, a route or a status.
    key: String,
    /// Team or key name, when grouping by those.
    label: Option<String>,
    #[serde(flatten)]
    totals: TotalsView,
}

/// A usage report.
#[derive(Serialize, ToSchema)]
pub struct UsageReport {
    group_by: String,
    rows: Vec<GroupView>,
    /// The sum of `rows`, exactly.
    totals: TotalsView,
}

/// Grouped usage with exact totals.
#[utoipa::path(get, path = "/usage", tag = "usage", params(UsageQuery),
    responses((status = 200, body = UsageReport), (status = 400, body = ErrorBody)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> Result<Json<UsageReport>, ApiError> {
    let (_, groups, totals) = usage::report(&state, &principal, &q).await?;
    Ok(Json(UsageReport {
        group_by: q.group_by.clone().unwrap_or_else(|| "day".into()),
        rows: groups
            .iter()
            .map(|g| GroupView {
                key: g.key.clone(),
                label: g.label.clone(),
                totals: (&g.totals).into(),
            })
            .collect(),
        totals: (&totals).into(),
    }))
}

/// The grouped report as CSV, one line per group.
#[utoipa::path(get, path = "/usage/summary.csv", tag = "usage", params(UsageQuery),
    responses((status = 200, content_type = "text/csv", body = String)), security(("bearer" = [])))]
pub async fn summary_csv(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> Result<Response, ApiError> {
    usage::summary_csv(&state, &principal, &q)
        .await
        .map(IntoResponse::into_response)
}

/// Every matching call as CSV, one line per call (UTC timestamps), streamed: the file is never
/// held in memory whole.
#[utoipa::path(get, path = "/usage/export.csv", tag = "usage", params(UsageQuery),
    responses((status = 200, content_type = "text/csv", body = String)), security(("bearer" = [])))]
pub async fn export_csv(
    State(state): State<ConsoleState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> Result<Response, ApiError> {
    usage::export_csv(&state, &principal, &q)
        .await
        .map(IntoResponse::into_response)
}
