//! Usage reports and CSV exports. Amounts are exact decimal strings in USD (12 decimal places);
//! totals are the sum of the rows to the last digit.

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use flo2_core::{GatewayKeyId, PicoUsd, ProviderKind, Role, TeamId};
use flo2_store::{ExportRow, GroupBy, UsageFilter, UsageGroup, UsageTotals};
use serde::Deserialize;
use tokio::sync::mpsc;
use utoipa::IntoParams;

use crate::auth::Principal;
use crate::csv;
use crate::error::ApiError;
use crate::ConsoleState;

/// Report filters.
#[derive(Deserialize, IntoParams)]
pub struct UsageQuery {
    /// Calls started at or after (RFC 3339).
    from: Option<DateTime<Utc>>,
    /// Calls started before (RFC 3339).
    to: Option<DateTime<Utc>>,
    /// `hour`, `day` (default), `month`, `model`, `provider`, `team`, `key`, `route` or `status`.
    pub(crate) group_by: Option<String>,
    team_id: Option<TeamId>,
    api_key_id: Option<GatewayKeyId>,
    provider: Option<String>,
    /// A model id, or `provider/model`.
    model: Option<String>,
    route: Option<String>,
    status: Option<i64>,
}

impl UsageQuery {
    fn filter(&self) -> Result<UsageFilter, ApiError> {
        let (mut provider, mut model) = (self.provider.clone(), self.model.clone());
        if let Some((p, m)) = self.model.as_deref().and_then(|m| m.split_once('/')) {
            if p.parse::<ProviderKind>().is_ok() {
                provider = Some(p.to_owned());
                model = Some(m.to_owned());
            }
        }
        if let Some(p) = &provider {
            p.parse::<ProviderKind>()
                .map_err(|e| ApiError::invalid_field("provider", e.to_string()))?;
        }
        Ok(UsageFilter {
            from: self.from,
            to: self.to,
            team_id: self.team_id,
            api_key_id: self.api_key_id,
            provider,
            model,
            route: self.route.clone(),
            status: self.status,
        })
    }

    fn group_by(&self) -> Result<GroupBy, ApiError> {
        match self.group_by.as_deref() {
            None => Ok(GroupBy::Day),
            Some(g) => GroupBy::parse(g).ok_or_else(|| {
                ApiError::invalid_field(
                    "group_by",
                    "`group_by` must be one of hour, day, month, model, provider, team, key, route, status",
                )
            }),
        }
    }
}

/// The grouped report for `q` (viewer or higher): how it was grouped, the groups and their sum.
pub(crate) async fn report(
    state: &ConsoleState,
    principal: &Principal,
    q: &UsageQuery,
) -> Result<(GroupBy, Vec<UsageGroup>, UsageTotals), ApiError> {
    let org = principal.require(Role::Viewer)?;
    let group_by = q.group_by()?;
    let (groups, totals) = state
        .store
        .usage_report(org, &q.filter()?, group_by)
        .await?;
    Ok((group_by, groups, totals))
}

/// A CSV file to download.
pub(crate) struct CsvFile {
    name: &'static str,
    body: Body,
}

impl IntoResponse for CsvFile {
    fn into_response(self) -> Response {
        (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}\"", self.name),
                ),
            ],
            self.body,
        )
            .into_response()
    }
}

const SUMMARY_HEADER: [&str; 14] = [
    "key",
    "label",
    "calls",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_usd",
    "baseline_cost_usd",
    "savings_usd",
    "routing_savings_usd",
    "cache_savings_usd",
    "unpriced_calls",
];

/// The grouped report as CSV, one line per group.
pub(crate) async fn summary_csv(
    state: &ConsoleState,
    principal: &Principal,
    q: &UsageQuery,
) -> Result<CsvFile, ApiError> {
    let (_, groups, _) = report(state, principal, q).await?;
    let mut out = csv::line(SUMMARY_HEADER);
    for g in &groups {
        let t = &g.totals;
        out.push_str(&csv::line([
            g.key.clone(),
            g.label.clone().unwrap_or_default(),
            t.calls.to_string(),
            t.input_tokens.to_string(),
            t.output_tokens.to_string(),
            t.cached_input_tokens.to_string(),
            t.cache_write_tokens.to_string(),
            t.reasoning_tokens.to_string(),
            t.cost.to_string(),
            t.baseline_cost.to_string(),
            (t.baseline_cost - t.cost).to_string(),
            t.routing_savings().to_string(),
            t.cache_savings.to_string(),
            t.unpriced_calls.to_string(),
        ]));
    }
    Ok(CsvFile {
        name: "flo2-usage-summary.csv",
        body: Body::from(out),
    })
}

const EXPORT_HEADER: [&str; 22] = [
    "id",
    "request_id",
    "started_at",
    "team",
    "api_key",
    "inbound_api",
    "requested_model",
    "route",
    "attempt_role",
    "provider",
    "model",
    "status",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_usd",
    "baseline_cost_usd",
    "latency_ms",
    "ttft_ms",
    "unpriced",
];

fn export_line(r: &ExportRow) -> String {
    csv::line([
        r.id.0.to_string(),
        r.request_id.0.to_string(),
        r.started_at
            .0
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        r.team.clone().unwrap_or_default(),
        r.api_key.clone().unwrap_or_default(),
        r.inbound_api.clone(),
        r.requested_model.clone(),
        r.route.clone().unwrap_or_default(),
        r.attempt_role.clone(),
        r.provider.clone(),
        r.model.clone(),
        r.status.to_string(),
        r.input_tokens.to_string(),
        r.output_tokens.to_string(),
        r.cached_input_tokens.to_string(),
        r.cache_write_tokens.to_string(),
        r.reasoning_tokens.to_string(),
        PicoUsd(i128::from(r.cost_picousd)).to_string(),
        PicoUsd(i128::from(r.baseline_cost_picousd)).to_string(),
        r.latency_ms.to_string(),
        r.ttft_ms.map(|t| t.to_string()).unwrap_or_default(),
        r.unpriced.to_string(),
    ])
}

/// Every matching call as CSV, one line per call (UTC timestamps), streamed: the file is never
/// held in memory whole.
pub(crate) async fn export_csv(
    state: &ConsoleState,
    principal: &Principal,
    q: &UsageQuery,
) -> Result<CsvFile, ApiError> {
    let org = principal.require(Role::Viewer)?;
    let filter = q.filter()?;
    let (tx, rx) = mpsc::channel::<Vec<ExportRow>>(4);
    let store = state.store.clone();
    // Request-scoped: if the download is abandoned the receiver drops and the query stops.
    tokio::spawn(async move {
        if let Err(err) = store.export_usage(org, &filter, tx).await {
            tracing::error!(error = %err, "usage export failed part way");
        }
    });
    let header =
        futures_util::stream::once(async { Ok::<_, std::io::Error>(csv::line(EXPORT_HEADER)) });
    let rows = futures_util::stream::unfold(rx, |mut rx| async move {
        let batch = rx.recv().await?;
        let text: String = batch.iter().map(export_line).collect();
        Some((Ok::<_, std::io::Error>(text), rx))
    });
    Ok(CsvFile {
        name: "flo2-usage.csv",
        body: Body::from_stream(futures_util::StreamExt::chain(header, rows)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(json: serde_json::Value) -> UsageQuery {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn filters_name_their_field() {
        let e = query(serde_json::json!({"group_by": "week"}))
            .group_by()
            .unwrap_err();
        assert_eq!(e.field(), Some("group_by"));
        let e = query(serde_json::json!({"provider": "nope"}))
            .filter()
            .unwrap_err();
        assert_eq!(e.field(), Some("provider"));
        assert!(query(serde_json::json!({"model": "openai/gpt-4o"}))
            .filter()
            .is_ok());
    }
}
