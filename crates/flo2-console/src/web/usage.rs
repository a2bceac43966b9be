//! The usage page: filters, totals and savings, cost per day stacked by model or provider
//! (server-rendered SVG, no script), a table grouped by the chosen dimension, CSV downloads and a
//! request log of recent calls with their route decisions.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, TimeZone, Utc};
use flo2_core::{PicoUsd, Role};
use flo2_store::{GroupBy, UsageFilter};
use serde::Deserialize;

use super::account::chrome;
use super::render;
use super::session::WebUser;
use super::Chrome;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::service::usage::{self, UsageQuery};
use crate::ConsoleState;

const GROUP_BYS: [&str; 9] = [
    "day", "hour", "month", "model", "provider", "team", "key", "route", "status",
];
const CHART_BYS: [&str; 2] = ["model", "provider"];
const LOG_ROWS: i64 = 50;
const COLORS: [&str; 8] = [
    "#1f4fd1", "#e07b00", "#1d8a4a", "#b42318", "#7a3fd1", "#0f8b8d", "#a15c00", "#5b6270",
];

/// The page's query, as typed in the filter form (empty means "all").
#[derive(Default, Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    team_id: String,
    #[serde(default)]
    api_key_id: String,
    #[serde(default)]
    provider: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    route: String,
    #[serde(default)]
    group_by: String,
    #[serde(default)]
    chart_by: String,
}

/// Totals as shown.
pub struct Totals {
    calls: i64,
    cost: String,
    baseline: String,
    savings: String,
    routing: String,
    cache: String,
    unpriced_calls: i64,
}

/// A model called without a price, with the link that sets one.
pub struct Unpriced {
    model: String,
    calls: i64,
    link: String,
}

/// A grouped row.
pub struct Row {
    key: String,
    calls: i64,
    input: i64,
    output: i64,
    cost: String,
    savings: String,
}

/// A logged call.
pub struct Call {
    time: String,
    requested: String,
    target: String,
    role: String,
    status: i64,
    latency: i64,
    tokens: String,
    cost: String,
}

#[derive(Template)]
#[template(path = "usage.html")]
struct UsagePage {
    chrome: Chrome,
    q: PageQuery,
    teams: Vec<(String, String, bool)>,
    keys: Vec<(String, String, bool)>,
    group_bys: Vec<(&'static str, bool)>,
    chart_bys: Vec<(&'static str, bool)>,
    group_by: String,
    chart_by: String,
    totals: Totals,
    rows: Vec<Row>,
    chart: String,
    log: Vec<Call>,
    unpriced: Vec<Unpriced>,
    csv_query: String,
    error: Option<String>,
}

fn some(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn id<T: std::str::FromStr>(field: &str, s: &str) -> Result<Option<T>, ApiError> {
    some(s)
        .map(|v| {
            v.parse()
                .map_err(|_| ApiError::invalid_field(field, format!("`{field}` is not an id")))
        })
        .transpose()
}

fn day(field: &str, s: &str, end: bool) -> Result<Option<chrono::DateTime<Utc>>, ApiError> {
    let Some(s) = some(s) else { return Ok(None) };
    let d = NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|_| {
        ApiError::invalid_field(field, format!("`{field}` must be a date like 2026-11-24"))
    })?;
    // `to` includes its whole day.
    let d = if end { d.succ_opt().unwrap_or(d) } else { d };
    Ok(d.and_hms_opt(0, 0, 0).map(|t| Utc.from_utc_datetime(&t)))
}

impl PageQuery {
    fn filter(&self) -> Result<UsageFilter, ApiError> {
        let (mut provider, mut model) = (some(&self.provider), some(&self.model));
        if let Some((p, m)) = model.clone().as_deref().and_then(|m| m.split_once('/')) {
            if p.parse::<flo2_core::ProviderKind>().is_ok() {
                provider = Some(p.to_owned());
                model = Some(m.to_owned());
            }
        }
        Ok(UsageFilter {
            from: day("from", &self.from, false)?,
            to: day("to", &self.to, true)?,
            team_id: id("team_id", &self.team_id)?,
            api_key_id: id("api_key_id", &self.api_key_id)?,
            provider,
            model,
            route: some(&self.route),
            status: None,
        })
    }

    /// The same filters for the CSV endpoints (RFC 3339 times).
    fn csv_query(&self, f: &UsageFilter, group_by: &str) -> String {
        let mut pairs: Vec<(&str, String)> = vec![("group_by", group_by.to_owned())];
        if let Some(t) = f.from {
            pairs.push(("from", t.to_rfc3339()));
        }
        if let Some(t) = f.to {
            pairs.push(("to", t.to_rfc3339()));
        }
        for (k, v) in [
            ("team_id", &self.team_id),
            ("api_key_id", &self.api_key_id),
            ("provider", &self.provider),
            ("model", &self.model),
            ("route", &self.route),
        ] {
            if let Some(v) = some(v) {
                pairs.push((k, v));
            }
        }
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Percent-encoding for a query value.
pub(crate) fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Escapes text for SVG/HTML.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A stacked bar chart of cost per bucket and key, as SVG. Heights are proportional to exact
/// costs; only the pixel positions are rounded.
fn chart(series: &[(String, String, PicoUsd)]) -> String {
    let mut buckets: BTreeMap<&str, Vec<(&str, PicoUsd)>> = BTreeMap::new();
    let mut keys: Vec<&str> = Vec::new();
    for (b, k, c) in series {
        buckets.entry(b).or_default().push((k, *c));
        if !keys.contains(&k.as_str()) {
            keys.push(k);
        }
    }
    let max = buckets
        .values()
        .map(|v| v.iter().map(|(_, c)| c.0).sum::<i128>())
        .max()
        .unwrap_or(0)
        .max(1);
    let (width, height, top, bottom, left) = (720i128, 260i128, 20i128, 40i128, 10i128);
    let plot = height - top - bottom;
    let n = i128::try_from(buckets.len()).unwrap_or(1).max(1);
    let slot = (width - 2 * left) / n;
    let bar = (slot * 7 / 10).clamp(2, 60);
    let legend_rows = i128::try_from(keys.len().div_ceil(3)).unwrap_or(0);
    let total_h = height + legend_rows * 18 + 10;
    let mut svg = format!("<svg viewBox=\"0 0 {width} {total_h}\" role=\"img\" aria-label=\"Cost per day\" xmlns=\"http://www.w3.org/2000/svg\">");
    for (i, (bucket, parts)) in buckets.iter().enumerate() {
        let x = left + i128::try_from(i).unwrap_or(0) * slot + (slot - bar) / 2;
        let mut y = top + plot;
        for (k, c) in parts {
            let h = (c.0 * plot / max).max(1);
            y -= h;
            let color = COLORS[keys.iter().position(|x| x == k).unwrap_or(0) % COLORS.len()];
            let _ = write!(svg, "<rect x=\"{x}\" y=\"{y}\" width=\"{bar}\" height=\"{h}\" fill=\"{color}\"><title>{} {}: ${}</title></rect>", escape(bucket), escape(k), c);
        }
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            x + bar / 2,
            top + plot + 16,
            escape(bucket.get(5..).unwrap_or(bucket))
        );
    }
    for (i, k) in keys.iter().enumerate() {
        let i = i128::try_from(i).unwrap_or(0);
        let (x, y) = (left + (i % 3) * 240, height + (i / 3) * 18);
        let color = COLORS[usize::try_from(i).unwrap_or(0) % COLORS.len()];
        let _ = write!(svg, "<rect x=\"{x}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{color}\"></rect><text x=\"{}\" y=\"{}\">{}</text>", y - 9, x + 14, y, escape(k));
    }
    svg.push_str("</svg>");
    svg
}

fn money(p: PicoUsd) -> String {
    p.to_string()
}

/// `GET /app/usage`.
pub async fn page(
    State(state): State<ConsoleState>,
    user: WebUser,
    Query(q): Query<PageQuery>,
) -> Response {
    let org = match user.principal.require(Role::Viewer) {
        Ok(o) => o,
        Err(e) => return super::error_page(&e),
    };
    let group_by = GROUP_BYS
        .iter()
        .find(|g| **g == q.group_by)
        .copied()
        .unwrap_or("day");
    let chart_by = CHART_BYS
        .iter()
        .find(|c| **c == q.chart_by)
        .copied()
        .unwrap_or("model");
    let (filter, error) = match q.filter() {
        Ok(f) => (f, None),
        Err(e) => (UsageFilter::default(), Some(e.message().to_owned())),
    };
    let loaded = async {
        let g = GroupBy::parse(group_by).unwrap_or(GroupBy::Day);
        let c = GroupBy::parse(chart_by).unwrap_or(GroupBy::Model);
        let (groups, totals) = state.store.usage_report(org, &filter, g).await?;
        let series = state
            .store
            .usage_series(org, &filter, GroupBy::Day, c)
            .await?;
        let log = state.store.recent_usage(org, &filter, LOG_ROWS).await?;
        let teams = state.store.teams(org).await?;
        let keys = state.store.gateway_keys(org).await?;
        let unpriced = state.store.unpriced_models(org, &filter).await?;
        Ok::<_, flo2_store::StoreError>((groups, totals, series, log, teams, keys, unpriced))
    }
    .await;
    let (groups, totals, series, log, teams, keys, unpriced) = match loaded {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, "loading the usage page failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let label = |key: &str| match group_by {
        "team" => teams
            .iter()
            .find(|t| t.id.to_string() == key)
            .map_or_else(|| key.to_owned(), |t| t.name.clone()),
        "key" => keys
            .iter()
            .find(|k| k.id.to_string() == key)
            .map_or_else(|| key.to_owned(), |k| k.name.clone()),
        _ => {
            if key.is_empty() {
                "(none)".to_owned()
            } else {
                key.to_owned()
            }
        }
    };
    let csv_query = q.csv_query(&filter, group_by);
    let page = UsagePage {
        chrome: chrome(&state, &user).await,
        teams: teams
            .iter()
            .map(|t| {
                (
                    t.id.to_string(),
                    t.name.clone(),
                    t.id.to_string() == q.team_id,
                )
            })
            .collect(),
        keys: keys
            .iter()
            .map(|k| {
                (
                    k.id.to_string(),
                    k.name.clone(),
                    k.id.to_string() == q.api_key_id,
                )
            })
            .collect(),
        group_bys: GROUP_BYS.iter().map(|g| (*g, *g == group_by)).collect(),
        chart_bys: CHART_BYS.iter().map(|c| (*c, *c == chart_by)).collect(),
        group_by: group_by.to_owned(),
        chart_by: chart_by.to_owned(),
        totals: Totals {
            calls: totals.calls,
            cost: money(totals.cost),
            baseline: money(totals.baseline_cost),
            savings: money(totals.baseline_cost - totals.cost),
            routing: money(totals.routing_savings()),
            cache: money(totals.cache_savings),
            unpriced_calls: totals.unpriced_calls,
        },
        unpriced: unpriced
            .into_iter()
            .map(|(provider, model, calls)| Unpriced {
                link: format!(
                    "/app/prices?provider={}&model={}#set-price",
                    encode(&provider),
                    encode(&model)
                ),
                model: format!("{provider}/{model}"),
                calls,
            })
            .collect(),
        rows: groups
            .iter()
            .map(|g| Row {
                key: label(&g.key),
                calls: g.totals.calls,
                input: g.totals.input_tokens,
                output: g.totals.output_tokens,
                cost: money(g.totals.cost),
                savings: money(g.totals.baseline_cost - g.totals.cost),
            })
            .collect(),
        chart: chart(&series),
        log: log
            .into_iter()
            .map(|c| Call {
                time: c.started_at.0.format("%Y-%m-%d %H:%M:%S").to_string(),
                requested: match &c.route {
                    Some(r) => format!("route {r}"),
                    None => c.requested_model.clone(),
                },
                target: format!("{}/{}", c.provider, c.model),
                role: c.attempt_role,
                status: c.status,
                latency: c.latency_ms,
                tokens: format!(
                    "{} / {}",
                    c.input_tokens + c.cached_input_tokens + c.cache_write_tokens,
                    c.output_tokens
                ),
                cost: if c.unpriced {
                    "unpriced".to_owned()
                } else {
                    money(PicoUsd(i128::from(c.cost_picousd)))
                },
            })
            .collect(),
        csv_query,
        q,
        error,
    };
    render(StatusCode::OK, &page)
}

/// `GET /app/usage/export.csv`: the API's per-call export, for the logged-in user.
pub async fn export(
    State(state): State<ConsoleState>,
    user: WebUser,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> Response {
    usage::export_csv(&state, &user.principal, &q)
        .await
        .into_response()
}

/// `GET /app/usage/summary.csv`: the API's summary export, for the logged-in user.
pub async fn summary(
    State(state): State<ConsoleState>,
    user: WebUser,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> Response {
    usage::summary_csv(&state, &user.principal, &q)
        .await
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_stacks_and_escapes() {
        let svg = chart(&[
            ("2026-11-23".into(), "openai/<gpt>".into(), PicoUsd(2)),
            ("2026-11-24".into(), "openai/<gpt>".into(), PicoUsd(1)),
            ("2026-11-24".into(), "groq/llama".into(), PicoUsd(1)),
        ]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(!svg.contains("<gpt>") && svg.contains("&lt;gpt&gt;"));
        assert_eq!(
            svg.matches("<rect").count(),
            3 + 2,
            "three bars and two legend swatches"
        );
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            encode("2026-11-24T00:00:00+00:00"),
            "2026-11-24T00%3A00%3A00%2B00%3A00"
        );
    }
}
